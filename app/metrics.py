# -*- test-case-name: tests.app.test_metrics -*-
"""Prometheus metrics of ``hybrid serve``: counted on the request path as plain numbers, exposed at scrape.

``Meters`` is sans-IO: it takes the ``AccessRecord`` of every request (it is a
``RequestObserver``, beside the access log) and WebSocket events, and keeps counts per side
(``twisted``, ``asgi``, ``wsgi``, a ``--mount`` prefix, or ``site``). Nothing on the request path
touches ``prometheus_client``: a dictionary increment per request, a bisect for the latency
bucket. ``MetricsCollector`` turns the counts, plus what is read at scrape time (requests in
flight, the reactor's delayed calls, asyncio tasks), into metric families for the library's own
exposition (``app.metrics_web`` serves it).
"""

from __future__ import annotations

import asyncio
import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from app.access_log import CLIENT_CLOSED, SITE, AccessRecord

#: Latency buckets in seconds: the tutorial's delays (0 to 60 s) as well as fast endpoints.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: Statuses counted as refusals when a response carries them: a body too large, overload (and
#: 408/431 should a response carry them; the bridge's channel writes its own without one).
REFUSED = frozenset({408, 413, 431, 503})

#: Where the requests in flight per side come from, read at scrape time.
InFlight = Callable[[], Mapping[str, int]]


class _Latency:
    """One histogram's counts per bucket (the last one is +Inf), and their sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running = 0
        buckets = []
        for bound, count in zip([*(f"{b:g}" for b in BUCKETS), "+Inf"], self.counts, strict=True):
            running += count
            buckets.append((bound, float(running)))
        return buckets


class Meters:
    """The counts behind the metrics; every method is cheap enough for the request path."""

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.refused: Counter[tuple[str, str]] = Counter()
        self.abandoned: Counter[str] = Counter()
        self.latency: dict[str, _Latency] = {}
        self.websockets_open: Counter[str] = Counter()
        self.websocket_messages: Counter[tuple[str, str]] = Counter()

    def __call__(self, record: AccessRecord) -> None:
        """Count one request (the ``RequestObserver`` protocol of ``app.logs``)."""
        side = record.side
        if record.client_left:
            self.abandoned[side] += 1
        if record.status == CLIENT_CLOSED:
            return  # no answer: neither a status class nor a latency
        self.requests[side, f"{record.status // 100}xx"] += 1
        if record.status in REFUSED:
            self.refused[side, str(record.status)] += 1
        latency = self.latency.get(side)
        if latency is None:
            latency = self.latency[side] = _Latency()
        latency.observe(record.duration)

    def connection_refused(self) -> None:
        """A connection beyond ``--max-connections``, answered 503 before any request."""
        self.refused[SITE, "503"] += 1

    def channel_refused(self, status: int) -> None:
        """A request the HTTP channel answered itself (400, 408, 431, 505): no side saw it."""
        self.refused[SITE, str(status)] += 1

    def websocket_opened(self, side: str) -> None:
        self.websockets_open[side] += 1

    def websocket_closed(self, side: str) -> None:
        self.websockets_open[side] -= 1

    def websocket_message(self, side: str, direction: str) -> None:
        """``direction`` is ``in`` (from the client) or ``out``."""
        self.websocket_messages[side, direction] += 1


class MetricsCollector(Collector):
    """Metric families from ``Meters``, the requests in flight and the event loop, at each scrape."""

    def __init__(self, meters: Meters, in_flight: InFlight, reactor: Any) -> None:
        self._meters = meters
        self._in_flight = in_flight
        self._reactor = reactor

    def collect(self) -> Iterator[Metric]:
        meters = self._meters
        requests = CounterMetricFamily(
            "hybrid_requests", "Requests answered, by side and status class.", labels=["side", "status_class"]
        )
        for (side, status_class), count in sorted(meters.requests.items()):
            requests.add_metric([side, status_class], count)
        yield requests
        latency = HistogramMetricFamily(
            "hybrid_request_duration_seconds",
            "Seconds from a request's arrival to its response's last byte, by side.",
            labels=["side"],
        )
        for side, histogram in sorted(meters.latency.items()):
            latency.add_metric([side], histogram.cumulative(), histogram.total)
        yield latency
        in_flight = GaugeMetricFamily(
            "hybrid_requests_in_flight", "Requests not answered yet, by side.", labels=["side"]
        )
        for side, count in sorted(self._in_flight().items()):
            in_flight.add_metric([side], count)
        yield in_flight
        yield _counter(
            "hybrid_requests_abandoned", "Requests whose client left before the response ended.", meters.abandoned
        )
        refused = CounterMetricFamily(
            "hybrid_requests_refused",
            "Requests refused by a limit: 413 body too large, 503 overload (connections beyond the limit under"
            " side=site), and under side=site what the HTTP channel refused itself (400 malformed, 408 too"
            " slow, 431 headers too large, 505 version), by side and status.",
            labels=["side", "status"],
        )
        for (side, status), count in sorted(meters.refused.items()):
            refused.add_metric([side, status], count)
        yield refused
        websockets = GaugeMetricFamily(
            "hybrid_websockets_open", "WebSocket connections open, by side.", labels=["side"]
        )
        for side, count in sorted(meters.websockets_open.items()):
            websockets.add_metric([side], count)
        yield websockets
        messages = CounterMetricFamily(
            "hybrid_websocket_messages",
            "WebSocket messages, by side and direction (in: from the client).",
            labels=["side", "direction"],
        )
        for (side, direction), count in sorted(meters.websocket_messages.items()):
            messages.add_metric([side, direction], count)
        yield messages
        yield GaugeMetricFamily(
            "hybrid_reactor_delayed_calls",
            "Delayed calls pending on the reactor.",
            value=len(self._reactor.getDelayedCalls()),
        )
        yield GaugeMetricFamily("hybrid_asyncio_tasks", "asyncio tasks not done.", value=_tasks())


def _counter(name: str, documentation: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=["side"])
    for side, count in sorted(counts.items()):
        family.add_metric([side], count)
    return family


def _tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop: a scrape outside it (never in the server)
        return 0
