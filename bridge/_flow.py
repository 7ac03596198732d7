"""The two waits every ASGI connection has, shared by the HTTP and WebSocket glue.

Both run on the reactor's loop.  ``IdleWaiters`` is the Twisted-side wait
for draining: Deferreds that fire once nothing is in flight.  ``Wakeup`` parks ``receive()`` until the I/O
side has something new (a body chunk, a message, a disconnect).  ``WriteGate``
turns Twisted's push-producer calls into backpressure for ``send()``: after a
write, ``send()`` waits while the transport has paused its producer.
"""

from __future__ import annotations

import asyncio

from twisted.internet.defer import Deferred, succeed


class Wakeup:
    """Waiters parked until the next ``wake()``; a wake with no waiter is a no-op.

    Any number of tasks may wait (an app can call ``receive()`` or ``send()``
    from several tasks): they share one future per round, shielded so that a
    cancelled waiter does not cancel the others.  Callers re-check their own
    state after waking, so a wake that comes before the wait is never needed.
    """

    __slots__ = ("_loop", "_round")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._round: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        if self._round is None:
            self._round = self._loop.create_future()
        await asyncio.shield(self._round)

    def wake(self) -> None:
        current, self._round = self._round, None
        if current is not None and not current.done():
            current.set_result(None)


class WriteGate:
    """Open unless the transport paused us; ``close()`` opens it for good (connection gone)."""

    __slots__ = ("_closed", "_open", "paused")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._open = Wakeup(loop)
        self._closed = False
        self.paused = False

    def pause(self) -> None:
        if not self._closed:
            self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._open.wake()

    def close(self) -> None:
        self._closed = True
        self.resume()

    async def wait(self) -> None:
        """Return once writing may go on (at once unless paused)."""
        while self.paused:
            await self._open.wait()


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


__all__ = ["IdleWaiters", "Wakeup", "WriteGate"]
