"""What the hosts of app calls are given: frozen options and an in-flight tracker.

``ASGIResource`` builds both once; the HTTP and WebSocket hosts read the
options and report to the tracker, and never see the resource itself, so no
module of the glue has to import the one that creates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred

from bridge._flow import IdleWaiters
from bridge._proxy import Network


@dataclass(frozen=True, slots=True)
class Options:
    """The settings of one ``ASGIResource``; see its docstring for each."""

    state: Mapping[str, Any] = field(default_factory=dict)
    max_body_size: int | None = None
    disconnect_grace: float = 3.0
    trusted_proxies: tuple[Network, ...] = ()
    max_in_flight: int | None = None
    response_timeout: float | None = None
    ws_max_message_size: int | None = 16 * 1024 * 1024
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True


class InFlight:
    """App calls that have not finished yet, and what happened to the others.

    The hosts add a call when it starts and discard it when its task is done
    (which can be after its response: apps compute after ``send()``), so
    ``wait_idle`` is what a drain on shutdown must wait for.
    """

    __slots__ = ("_calls", "_idle", "abandoned", "limit", "rejected")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._calls: set[object] = set()
        self._idle = IdleWaiters()
        #: Requests whose client left before the response was complete.
        self.abandoned = 0
        #: Requests refused with 503 because ``limit`` was reached.
        self.rejected = 0

    def __len__(self) -> int:
        return len(self._calls)

    def full(self) -> bool:
        return self.limit is not None and len(self._calls) >= self.limit

    def calls(self) -> list[object]:
        """The calls in flight now (a copy: ending one changes the set)."""
        return list(self._calls)

    def add(self, call: object) -> None:
        self._calls.add(call)

    def discard(self, call: object) -> None:
        self._calls.discard(call)
        if not self._calls:
            self._idle.notify(False)

    def wait_idle(self) -> Deferred[None]:
        """A Deferred that fires once no call is in flight."""
        return self._idle.wait(bool(self._calls))


__all__ = ["InFlight", "Options"]
