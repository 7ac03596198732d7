"""Deadlines that all have the same length, on one timer.

Every request of an ``ASGIResource`` gets the same ``response_timeout``, so
deadlines expire in the order they were set.  Keeping them in an insertion-
ordered dict makes setting and clearing one O(1) with no timer per request
(a reactor timer per request was a visible share of the per-request cost);
a single timer is armed for the oldest and, when it fires, expires every
deadline that has passed and re-arms for the next; it is cancelled when the
last deadline is cleared.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class Deadlines:
    """Call each registered callback ``timeout`` seconds after it was set, unless cleared first."""

    __slots__ = ("_clock", "_pending", "_timeout", "_timer")

    def __init__(self, clock: IReactorTime, timeout: float) -> None:
        self._clock = clock
        self._timeout = timeout
        self._pending: dict[object, tuple[float, Callable[[], None]]] = {}
        self._timer: IDelayedCall | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def set(self, key: object, expired: Callable[[], None]) -> None:
        self._pending[key] = (self._clock.seconds() + self._timeout, expired)
        if self._timer is None:
            self._timer = self._clock.callLater(self._timeout, self._fire)

    def clear(self, key: object) -> None:
        pending = self._pending
        pending.pop(key, None)
        if not pending and self._timer is not None:
            # Nothing left to time: leave no timer behind (under load this is rare).
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        pending = self._pending
        while pending:
            key = next(iter(pending))
            when, expired = pending[key]
            if when > now:
                self._timer = self._clock.callLater(when - now, self._fire)
                return
            del pending[key]
            expired()


__all__ = ["Deadlines"]
