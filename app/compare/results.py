"""The results of a comparison: every request's timestamps, and the figures derived from them.

Times are seconds since the run started (``time.perf_counter`` based). A side's requests run in
rounds interleaved with the other sides' rounds, so its wall time is the sum of its own rounds,
and ``SideResult.side_time`` maps a timestamp onto that side's own clock (its rounds laid end to
end), which is how the timeline is drawn.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from app.compare.targets import Target

Outcome = Literal["completed", "error", "abandoned"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the client saw it."""

    index: int
    round: int
    sent: float
    #: When the response headers arrived (None if they never did).
    first_byte: float | None
    #: When the client was done with it: last byte read, error, or its own abort.
    ended: float
    outcome: Outcome
    status: int | None
    size: int
    error: str | None = None

    @property
    def latency(self) -> float | None:
        """Send to last byte, for completed requests."""
        return self.ended - self.sent if self.outcome == "completed" else None


@dataclass(frozen=True)
class RoundSpan:
    """One round of one side: from its first send to its last request's end."""

    round: int
    start: float
    end: float


@dataclass
class ServerFigures:
    """What the server's ``/stats`` said about one side, summed over its rounds."""

    peak_in_flight: int = 0
    completed: int = 0
    abandoned: int = 0
    #: Process figures, None when the server does not report them.
    cpu_seconds: float | None = None
    rss_change_bytes: int | None = None

    def add_round(self, key: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Account one round from the ``/stats`` snapshots taken (peak reset) before and after it."""
        self.peak_in_flight = max(self.peak_in_flight, after[key]["peak_in_flight"])
        self.completed += after[key]["completed"] - before[key]["completed"]
        self.abandoned += after[key]["abandoned"] - before[key]["abandoned"]
        start, end = before.get("process"), after.get("process")
        if start and end and start["pid"] == end["pid"]:
            self.cpu_seconds = (self.cpu_seconds or 0.0) + end["cpu_seconds"] - start["cpu_seconds"]
            if start["rss_bytes"] is not None and end["rss_bytes"] is not None:
                self.rss_change_bytes = (self.rss_change_bytes or 0) + end["rss_bytes"] - start["rss_bytes"]


@dataclass
class SideResult:
    target: Target
    requests: list[RequestRecord] = field(default_factory=list)
    rounds: list[RoundSpan] = field(default_factory=list)
    server: ServerFigures = field(default_factory=ServerFigures)

    @property
    def wall_seconds(self) -> float:
        return sum(span.end - span.start for span in self.rounds)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.requests if r.outcome == outcome)

    def side_time(self, t: float, round_: int) -> float:
        """``t`` (during round ``round_``) on this side's own clock: its earlier rounds' time plus the offset."""
        elapsed = 0.0
        for span in self.rounds:
            if span.round == round_:
                return elapsed + t - span.start
            elapsed += span.end - span.start
        raise ValueError(f"{self.target.name} has no round {round_}")

    def figures(self) -> dict[str, float | int | None]:
        """The summary figures, in the order the table shows them."""
        latencies = sorted(r.latency for r in self.requests if r.latency is not None)
        wall = self.wall_seconds
        completed = self.count("completed")
        return {
            "requests": len(self.requests),
            "completed": completed,
            "errors": self.count("error"),
            "abandoned": self.count("abandoned"),
            "wall_seconds": wall,
            "throughput_rps": completed / wall if wall else None,
            "latency_p50": percentile(latencies, 0.50),
            "latency_p90": percentile(latencies, 0.90),
            "latency_p99": percentile(latencies, 0.99),
            "latency_max": latencies[-1] if latencies else None,
            "server_peak_in_flight": self.server.peak_in_flight,
            "server_completed": self.server.completed,
            "server_abandoned": self.server.abandoned,
            "server_cpu_seconds": self.server.cpu_seconds,
            "server_rss_change_bytes": self.server.rss_change_bytes,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.target.name,
            "label": self.target.label,
            "url": self.target.server + self.target.prefix,
            "figures": self.figures(),
            "rounds": [asdict(span) for span in self.rounds],
            "requests": [asdict(r) for r in self.requests],
        }


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest rank: always a latency that was actually observed."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]
