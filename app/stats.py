"""Per-side request counters, served as JSON on ``/stats``.

Each side of the site (``twisted``, ``asgi``, and any added later) owns one ``SideStats``; a
request handler calls ``begin()`` when it starts waiting and then exactly one of ``complete()``
or ``abandon()`` on the returned ``Tracker``. The counters only ever change on the event loop
thread, so they need no lock. The snapshot also carries the serving process's pid, CPU time and
resident memory, so a client (``hybrid compare``) can tell what a workload cost the server, and
what a leak would show first: open file descriptors, asyncio tasks and the reactor's pending
delayed calls (the hardening tests and ``make soak`` watch them).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.interfaces import IReactorTime

#: Latency percentiles are computed over this many most recent requests, so a long-running
#: server keeps bounded memory; count, mean and max cover every completed request.
LATENCY_WINDOW = 10_000

#: The key of the process figures in the snapshot; no side may take it.
PROCESS = "process"


class SideStats:
    """Counters for one side: in flight, peak in flight, completed, abandoned, latency."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.in_flight = 0
        self.peak_in_flight = 0
        self.completed = 0
        self.abandoned = 0
        self._latency_sum = 0.0
        self._latency_max = 0.0
        self._recent: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def begin(self, counted: bool = True) -> Tracker:
        """Count a request as in flight until its tracker completes or abandons it.

        ``counted=False`` (a warm-up request, ``WARMUP`` in its query) returns a tracker that
        records nothing: warm-ups are served as usual but are not part of any run.
        """
        if not counted:
            return Tracker(None, 0.0)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return Tracker(self, self._now())

    def reset_peak(self) -> None:
        """Start a new peak-in-flight window (a comparison run measures its own peak)."""
        self.peak_in_flight = self.in_flight

    def _record(self, started: float, completed: bool) -> None:
        self.in_flight -= 1
        if not completed:
            self.abandoned += 1
            return
        latency = self._now() - started
        self.completed += 1
        self._latency_sum += latency
        self._latency_max = max(self._latency_max, latency)
        self._recent.append(latency)

    def snapshot(self) -> dict[str, Any]:
        """The JSON-ready view served on ``/stats``."""
        return {
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "completed": self.completed,
            "abandoned": self.abandoned,
            "latency": self._latency_summary(),
        }

    def _latency_summary(self) -> dict[str, float | int | None]:
        ordered = sorted(self._recent)
        summary: dict[str, float | int | None] = {
            "count": self.completed,
            "mean": self._latency_sum / self.completed if self.completed else None,
        }
        for name, fraction in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
            summary[name] = _nearest_rank(ordered, fraction)
        summary["max"] = self._latency_max if self.completed else None
        return summary


def _nearest_rank(ordered: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile: always a latency that was actually observed."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


class Tracker:
    """One request's stay in flight; the first outcome reported wins, later ones are ignored.

    Ignoring repeats keeps handlers simple where completion and disconnection race (a client
    that leaves just as the last byte is written).
    """

    def __init__(self, side: SideStats | None, started: float) -> None:
        self._side = side
        self._started = started
        self._done = False

    def complete(self) -> None:
        """The response was fully sent."""
        self._finish(True)

    def abandon(self) -> None:
        """The client left before the response was fully sent; its pending work was cancelled."""
        self._finish(False)

    def _finish(self, completed: bool) -> None:
        if not self._done:
            self._done = True
            if self._side is not None:
                self._side._record(self._started, completed)


class Stats:
    """The counters of every side, keyed by the side's name in ``/stats``.

    Adding a side is one call: ``stats.add_side("wsgi")``.
    """

    def __init__(self, sides: Iterable[str] = (), clock: IReactorTime | None = None) -> None:
        self._sides: dict[str, SideStats] = {}
        self._clock = clock
        for name in sides:
            self.add_side(name)

    def add_side(self, name: str) -> SideStats:
        """Register a side and return its counters."""
        if name in self._sides or name == PROCESS:
            raise ValueError(f"side {name!r} already has counters")
        self._sides[name] = side = SideStats()
        return side

    def __getitem__(self, name: str) -> SideStats:
        return self._sides[name]

    def reset_peaks(self) -> None:
        """Start a new peak-in-flight window on every side."""
        for side in self._sides.values():
            side.reset_peak()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{"twisted": {...}, "asgi": {...}, "process": {...}}``, sides in the order added."""
        sides = {name: side.snapshot() for name, side in self._sides.items()}
        return {**sides, PROCESS: process_snapshot(self._clock)}


def process_snapshot(clock: IReactorTime | None = None) -> dict[str, float | int | None]:
    """This process's pid, CPU seconds (user + system, all threads), resident set size, open file
    descriptors, asyncio tasks and the delayed calls pending on ``clock`` (the reactor).

    RSS is read from ``/proc/self/statm`` (current, not peak, so a client can diff it); it and the
    descriptors are None where there is no ``/proc``, tasks when no event loop is running, delayed
    calls without a clock.
    """
    try:
        with open("/proc/self/statm") as statm:
            rss: int | None = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        rss = None
    try:
        fds: int | None = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = None
    try:
        tasks: int | None = len(asyncio.all_tasks())
    except RuntimeError:
        tasks = None
    return {
        "pid": os.getpid(),
        "cpu_seconds": time.process_time(),
        "rss_bytes": rss,
        "open_fds": fds,
        "tasks": tasks,
        "delayed_calls": None if clock is None else len(clock.getDelayedCalls()),
    }
