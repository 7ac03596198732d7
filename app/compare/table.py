"""The side-by-side table of a comparison, for the terminal (rich).

One column per side in the order given, then one column of ratios to the first side (each other
side's figure divided by the first side's), so ``--sides twisted,asgi`` reads as "asgi compared
with twisted".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

from app.compare.results import SideResult

Number = float | int | None


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    format: Callable[[float], str]
    #: Whether a ratio between sides means something for this figure.
    ratio: bool = True


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _seconds(value: float) -> str:
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.3f} s"


def _rate(value: float) -> str:
    return f"{value:,.1f} req/s"


def _bytes(value: float) -> str:
    return f"{value / 2**20:+,.1f} MiB"


ROWS = (
    Row("completed", "completed", _count),
    Row("errors", "errors", _count),
    Row("abandoned (client)", "abandoned", _count),
    Row("wall time", "wall_seconds", _seconds),
    Row("throughput", "throughput_rps", _rate),
    Row("latency p50", "latency_p50", _seconds),
    Row("latency p90", "latency_p90", _seconds),
    Row("latency p99", "latency_p99", _seconds),
    Row("latency max", "latency_max", _seconds),
    Row("server: peak in flight", "server_peak_in_flight", _count),
    Row("server: completed", "server_completed", _count),
    Row("server: abandoned", "server_abandoned", _count),
    Row("server: CPU time", "server_cpu_seconds", _seconds),
    Row("server: RSS change", "server_rss_change_bytes", _bytes, ratio=False),
)


def render(results: list[SideResult]) -> Table:
    """The table: a row per figure (process rows only when a server reported them)."""
    figures = [r.figures() for r in results]
    first, others = results[0].target.name, [r.target.name for r in results[1:]]
    table = Table()
    table.add_column("", no_wrap=True)
    for result in results:
        table.add_column(f"{result.target.name}\n[dim]{result.target.label}[/]", justify="right")
    if others:
        table.add_column(f"ratio to {first}\n[dim]{' / '.join(others)}[/]", justify="right")
    for row in ROWS:
        values = [f[row.key] for f in figures]
        if all(v is None for v in values):
            continue
        cells = [row.format(v) if v is not None else "-" for v in values]
        if others:
            cells.append(_ratios(row, values))
        table.add_row(row.label, *cells)
    return table


def _ratios(row: Row, values: list[Number]) -> str:
    base, *rest = values
    if not row.ratio or not base:
        return ""
    return " / ".join(f"{v / base:.2f}" if v is not None else "-" for v in rest)
