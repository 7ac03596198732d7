"""``IdleWaiters``: the Twisted-side wait for draining.

Deferreds handed out while work is in flight fire once it reaches none; the
in-flight trackers (``bridge._options.InFlight``, ``StreamingSite``) use it.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed


class IdleWaiters:
    """Deferreds handed out while work is in flight, fired when it reaches none."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[Deferred[None]] = []

    def wait(self, busy: bool) -> Deferred[None]:
        if not busy:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        return d

    def notify(self, busy: bool) -> None:
        """Call after the in-flight count changed."""
        if not busy:
            waiters, self._waiters = self._waiters, []
            for d in waiters:
                d.callback(None)


__all__ = ["IdleWaiters"]
