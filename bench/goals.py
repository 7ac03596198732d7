"""The issue's targets, each a ratio (or a bound) computed from the medians of one run."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.runner import Results


@dataclass(frozen=True)
class Goal:
    """``server``'s figure (over ``versus``'s, when given) must be ``at_least`` or ``at_most``.

    ``worst`` judges the worst run instead of the median: for counts that must be zero.
    """

    text: str
    workload: str
    key: str
    server: str
    versus: str | None = None
    at_least: float | None = None
    at_most: float | None = None
    worst: bool = False
    unit: str = ""
    #: A second figure whose ratio is shown beside the first (W1: req per server CPU-second).
    also: str | None = None
    #: Judge the difference to this server's figure (what the bridge adds to native).
    minus: str | None = None

    def show(self, value: float) -> str:
        """A ratio as ``0.85x``; an absolute figure with its unit (a fraction to three places)."""
        if self.versus:
            return f"{value:.2f}x"
        places = 0 if abs(value) >= 100 or value == int(value) else 3 if abs(value) < 1 else 1
        return f"{value:,.{places}f}{self.unit}"


@dataclass(frozen=True)
class Verdict:
    goal: Goal
    value: float | None
    met: bool | None
    note: str


GOALS = [
    # -- issue 15: the request path ------------------------------------------------------------
    Goal(
        "W1: bridge (raw ASGI) server CPU per request <= 1.5 x native on the same reactor",
        "W1",
        "cpu_ms_per_req",
        "bridge-raw",
        "twisted-hybrid",
        at_most=1.5,
    ),
    Goal(
        "W1: `hybrid serve` + Starlette (defaults) >= 1.3 x Uvicorn (h11) + Starlette",
        "W1",
        "rps",
        "hybrid-starlette",
        "uvicorn-h11-starlette",
        at_least=1.3,
        also="per_core_s",
    ),
    Goal(
        "W1: `hybrid serve` + Starlette (defaults) >= 2 x Daphne + Starlette",
        "W1",
        "rps",
        "hybrid-starlette",
        "daphne-starlette",
        at_least=2.0,
        also="per_core_s",
    ),
    Goal(
        "W1: `hybrid serve` + Starlette p99 <= 1.5 x Uvicorn (h11)'s",
        "W1",
        "p99_ms",
        "hybrid-starlette",
        "uvicorn-h11-starlette",
        at_most=1.5,
    ),
    Goal(
        "(context) bridge + Starlette in a bare StreamingSite vs Uvicorn (h11) + Starlette",
        "W1",
        "rps",
        "bridge-starlette",
        "uvicorn-h11-starlette",
        also="per_core_s",
    ),
    Goal(
        "(context) native resource on the hybrid reactor vs epoll",
        "W1",
        "rps",
        "twisted-hybrid",
        "twisted-epoll",
        also="per_core_s",
    ),
    Goal(
        "W2: bridge + Starlette completes >= 0.7 of ideal",
        "W2",
        "completion_ratio",
        "bridge-starlette",
        at_least=0.7,
    ),
    Goal("W2: bridge side, zero errors", "W2", "errors", "bridge-starlette", at_most=0, worst=True, unit=" errors"),
    Goal("W2: native side, zero errors", "W2", "errors", "twisted-hybrid", at_most=0, worst=True, unit=" errors"),
    Goal(
        "W2: the bridge's own memory per held request <= 3 KB (raw app minus native)",
        "W2",
        "rss_kb_per_held",
        "bridge-raw",
        minus="twisted-hybrid",
        at_most=3.0,
        unit=" KB",
    ),
    Goal(
        "W6: time to a response followed by a 1-s background task <= 2 x Uvicorn (h11)'s",
        "W6",
        "response_ms",
        "bridge-starlette",
        "uvicorn-h11-starlette",
        at_most=2.0,
    ),
    Goal(
        "W6: the same under `hybrid serve` <= 2 x Uvicorn (h11)'s",
        "W6",
        "response_ms",
        "hybrid-starlette",
        "uvicorn-h11-starlette",
        at_most=2.0,
    ),
    Goal(
        "W5: bridge + Starlette 64-byte echo >= 1.5 x Daphne + Starlette",
        "W5",
        "per_s",
        "bridge-starlette",
        "daphne-starlette",
        at_least=1.5,
    ),
    # -- carried over: streaming stays flat ---------------------------------------------------
    Goal(
        "W3: bridge download >= 0.9 x native Twisted producer (same reactor)",
        "W3",
        "mb_per_s",
        "bridge-raw",
        "twisted-hybrid",
        at_least=0.9,
    ),
    Goal(
        "W3: bridge slow reader RSS growth < 20 MB",
        "W3-slow",
        "rss_growth_mb",
        "bridge-starlette",
        at_most=20,
        unit=" MB",
    ),
    Goal("W4: bridge upload RSS growth < 20 MB", "W4", "rss_growth_mb", "bridge-starlette", at_most=20, unit=" MB"),
    Goal(
        "W4: first chunk reaches the app within 50 ms of the headers",
        "W4",
        "first_chunk_ms",
        "bridge-starlette",
        at_most=50,
        unit=" ms",
    ),
    # The fast lane (issue 16): httptools + uvloop.
    Goal(
        "Fast lane: native resource on httptools + uvloop >= 1.4 x stock Twisted on epoll",
        "W1",
        "rps",
        "twisted-fast",
        "twisted-epoll",
        at_least=1.4,
        also="per_core_s",
    ),
    Goal(
        "Fast lane: bridge + Starlette on httptools + uvloop >= 0.8 x Uvicorn httptools/uvloop + Starlette",
        "W1",
        "rps",
        "bridge-starlette-fast",
        "uvicorn-fast-starlette",
        at_least=0.8,
        also="per_core_s",
    ),
    Goal(
        "Fast lane W2: native side completes >= 0.95 of ideal",
        "W2",
        "completion_ratio",
        "twisted-fast",
        at_least=0.95,
    ),
    Goal(
        "Fast lane W2: bridge + Starlette completes >= 1.0 x Uvicorn httptools + Starlette",
        "W2",
        "completion_ratio",
        "bridge-starlette-fast",
        "uvicorn-fast-starlette",
        at_least=1.0,
    ),
    Goal(
        "Fast lane W2: native side, zero errors", "W2", "errors", "twisted-fast", at_most=0, worst=True, unit=" errors"
    ),
    Goal(
        "Fast lane W2: bridge side, zero errors",
        "W2",
        "errors",
        "bridge-starlette-fast",
        at_most=0,
        worst=True,
        unit=" errors",
    ),
]


def figure(results: Results, workload: str, server: str, key: str, worst: bool = False) -> float | None:
    """Median (or worst) of one figure over the runs, or None when nothing was measured."""
    cell = results.cells.get(workload, {}).get(server)
    values = [run[key] for run in cell.runs if key in run] if cell else []
    if not values:
        return None
    return max(values) if worst else statistics.median(values)


def _why_missing(results: Results, workload: str, server: str) -> str:
    if server in results.missing:
        return f"not measured: {server} unavailable"
    cell = results.cells.get(workload, {}).get(server)
    if cell and cell.errors:
        return f"not measured: {server} failed ({cell.errors[0][:80]})"
    return f"not measured: {server} not in this run"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.{1 if fraction < 0.1 else 0}f}%"


def judge(goal: Goal, results: Results) -> Verdict:
    value = figure(results, goal.workload, goal.server, goal.key, goal.worst)
    if value is None:
        return Verdict(goal, None, None, _why_missing(results, goal.workload, goal.server))
    if goal.versus:
        base = figure(results, goal.workload, goal.versus, goal.key)
        if not base:
            return Verdict(goal, None, None, _why_missing(results, goal.workload, goal.versus))
        value /= base
    elif goal.minus:
        base = figure(results, goal.workload, goal.minus, goal.key)
        if base is None:
            return Verdict(goal, None, None, _why_missing(results, goal.workload, goal.minus))
        value -= base
    if goal.at_least is not None:
        met = value >= goal.at_least
        note = "met" if met else f"missed by {_percent(1 - value / goal.at_least)}"
    elif goal.at_most is not None:
        met = value <= goal.at_most
        if met:
            note = "met"
        elif goal.versus:
            note = f"missed by {_percent(value / goal.at_most - 1)}"
        else:
            note = f"missed: bound {goal.show(goal.at_most)}"
    else:
        met, note = None, "for context"
    if goal.also and goal.versus:
        mine, base = (figure(results, goal.workload, server, goal.also) for server in (goal.server, goal.versus))
        if mine is not None and base:
            note += f"; per server CPU-second {mine / base:.2f}x"
    return Verdict(goal, value, met, note)


def verdicts(results: Results) -> list[Verdict]:
    return [judge(goal, results) for goal in GOALS]
