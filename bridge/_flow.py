"""The two waits every ASGI connection has, shared by the HTTP and WebSocket glue.

Both run on the reactor's loop.  ``Wakeup`` parks ``receive()`` until the I/O
side has something new (a body chunk, a message, a disconnect).  ``WriteGate``
turns Twisted's push-producer calls into backpressure for ``send()``: after a
write, ``send()`` waits while the transport has paused its producer.
"""

from __future__ import annotations

import asyncio


class Wakeup:
    """One waiter at a time, released by ``wake()``; a wake with no waiter is a no-op.

    Callers re-check their own state after waking, so a wake that comes
    before the wait is never needed.
    """

    __slots__ = ("_loop", "_waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


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


__all__ = ["Wakeup", "WriteGate"]
