"""Watch a server's resident memory while a transfer runs.

A thread samples ``VmRSS`` from ``/proc/<pid>/status`` every few
milliseconds; the growth is the highest sample minus the level just before.
Sampling (rather than ``VmHWM``) keeps earlier tests' peaks out of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.conformance.fronts import Server

MB = 1024 * 1024
#: The issue's bound for streaming transfers: far below any body size tested.
MAX_GROWTH = 20 * MB


@dataclass
class RSSWatch:
    baseline: int
    peak: int = 0
    samples: int = 0

    @property
    def growth(self) -> int:
        return max(0, self.peak - self.baseline)

    def describe(self) -> str:
        return f"RSS {self.baseline / MB:.1f} MB -> peak {self.peak / MB:.1f} MB over {self.samples} samples"


@contextmanager
def watch_rss(server: Server, interval: float = 0.005) -> Iterator[RSSWatch]:
    watch = RSSWatch(baseline=server.rss())
    watch.peak = watch.baseline
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            try:
                watch.peak = max(watch.peak, server.rss())
            except FileNotFoundError:  # the process is gone: the test will say so
                return
            watch.samples += 1

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        stop.set()
        thread.join()
