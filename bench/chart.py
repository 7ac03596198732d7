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
    if server.startswith(("bridge", "reverse")):
        return "#d95f02"
    if server.startswith("twisted"):
        return "#7570b3"
    return "#1b9e77"


def draw(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if results.cells.get(p[0])]
    rows = (len(panels) + 1) // 2
    figure, axes = plt.subplots(rows, 2, figsize=(15, 1.2 + 3.6 * rows), squeeze=False)
    for axis, (workload, key, title) in zip(axes.flat, panels, strict=False):
        bars = []
        for server, cell in results.cells[workload].items():
            values = [run[key] for run in cell.runs if key in run]
            if values:
                bars.append((server, statistics.median(values), min(values), max(values)))
        bars.sort(key=lambda bar: bar[1])
        names = [bar[0] for bar in bars]
        spread = [[bar[1] - bar[2] for bar in bars], [bar[3] - bar[1] for bar in bars]]
        axis.barh(names, [bar[1] for bar in bars], xerr=spread, capsize=2, color=[_colour(name) for name in names])
        axis.set_title(title, fontsize=10, loc="left")
        axis.tick_params(labelsize=8)
        axis.grid(axis="x", alpha=0.3)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(
        f"{results.profile} run: medians of {results.reps} runs, bars show min-max. Orange: ours "
        f"(bridge, reverse adapter); purple: native Twisted; grey: the reference ({REFERENCE}); "
        "green: other servers",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
