"""The request timeline: one horizontal bar per request, from send to last byte, a panel per side.

It is the one picture of the tutorial's claim: with NOT_DONE_YET (or a coroutine) a request made
while others are pending is not held up by them, so a round's bars all start together and end
together, one delay later; a thread pool that is too small shows as a staircase instead. Each
side is drawn on its own clock (its rounds laid end to end, see ``SideResult.side_time``), so the
panels compare directly. Every bar carries an id (``request-<side>-<index>``), kept in SVG output.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from app.compare.results import SideResult

SIDE_COLOURS = ("#3b6fb6", "#d9822b", "#3a9e6f", "#8a5cc2")
ABANDONED = "#b8b8b8"
ERROR = "#d64545"
DELAY = "#555555"


def draw(results: list[SideResult], path: Path, title: str, delay: float) -> None:
    """Write the timeline to ``path``; the format (PNG or SVG) follows its suffix."""
    heights = [min(3.2, 0.8 + 0.045 * max(len(r.requests), 1)) for r in results]
    figure = Figure(figsize=(9, 1.2 + sum(heights)), layout="constrained")
    axes = figure.subplots(len(results), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    for number, (ax, result) in enumerate(zip(axes, results, strict=True)):
        _draw_side(ax, result, SIDE_COLOURS[number % len(SIDE_COLOURS)], delay)
    axes[-1].set_xlabel("seconds since the side's first request (its rounds laid end to end)")
    axes[-1].set_xlim(left=0)
    legend: list[Artist] = [
        Line2D([], [], color=DELAY, linestyle="--", label=f"the delay ({delay:g} s) after each round's start")
    ]
    if any(r.count("abandoned") for r in results):
        legend.append(Patch(color=ABANDONED, label="abandoned by the client"))
    if any(r.count("error") for r in results):
        legend.append(Patch(color=ERROR, label="error"))
    figure.legend(handles=legend, loc="outside lower center", ncols=len(legend), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=11)
    figure.savefig(path, dpi=110)


def _draw_side(ax: Axes, result: SideResult, colour: str, delay: float) -> None:
    requests = sorted(result.requests, key=lambda r: r.index)
    starts = [result.side_time(r.sent, r.round) for r in requests]
    widths = [result.side_time(r.ended, r.round) - s for r, s in zip(requests, starts, strict=True)]
    colours = [{"completed": colour, "abandoned": ABANDONED, "error": ERROR}[r.outcome] for r in requests]
    bars = ax.barh([r.index for r in requests], widths, left=starts, height=0.75, color=colours)
    for bar, request in zip(bars.patches, requests, strict=True):
        bar.set_gid(f"request-{result.target.name}-{request.index}")
    elapsed = 0.0
    for span in result.rounds:
        ax.axvline(elapsed + delay, color=DELAY, linewidth=0.9, linestyle="--")
        elapsed += span.end - span.start
    ax.set_ylim(len(requests) - 0.5, -0.5)
    ax.set_ylabel("request")
    ax.set_title(
        f"{result.target.name} · {result.target.label}: {result.wall_seconds:.2f} s wall time",
        loc="left",
        fontsize=10,
        color=colour,
        fontweight="bold",
    )
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
