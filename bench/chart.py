"""The results chart: one panel per headline figure, medians with the min-max of the runs."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.lineup import REFERENCE
from bench.runner import Results

PANELS = [
    ("W1", "rps", "W1 hello: req/s"),
    ("W2", "cpu_ms_per_req", "W2 held requests: server CPU ms/request"),
    ("W3", "mb_per_s", "W3 download: MB/s"),
    ("W3-slow", "rss_growth_mb", "W3 slow reader: server RSS growth MB"),
    ("W4", "mb_per_s", "W4 upload: MB/s"),
    ("W5", "per_s", "W5 WebSocket echo: messages/s"),
]


def _colour(server: str) -> str:
    if server == REFERENCE:
        return "#555555"
    if server.startswith(("bridge", "twisted-hybrid", "reverse")):
        return "#d95f02"
    if server.startswith("twisted"):
        return "#7570b3"
    return "#1b9e77"


def draw(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if results.cells.get(p[0])]
    figure, axes = plt.subplots(len(panels), 1, figsize=(9, 2.2 + 0.32 * 18 * len(panels) / 2), squeeze=False)
    for axis, (workload, key, title) in zip(axes[:, 0], panels, strict=True):
        rows = []
        for server, cell in results.cells[workload].items():
            values = [run[key] for run in cell.runs if key in run]
            if values:
                rows.append((server, statistics.median(values), min(values), max(values)))
        rows.sort(key=lambda row: row[1])
        names = [row[0] for row in rows]
        medians = [row[1] for row in rows]
        spread = [[row[1] - row[2] for row in rows], [row[3] - row[1] for row in rows]]
        axis.barh(names, medians, xerr=spread, color=[_colour(n) for n in names], capsize=2)
        axis.set_title(title, fontsize=10, loc="left")
        axis.tick_params(labelsize=8)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(
        f"{results.profile} run, medians of {results.reps} (bars: min-max); orange = ours, "
        f"grey = reference ({REFERENCE}), purple = native Twisted, green = peers",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
