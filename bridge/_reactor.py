"""Twisted's asyncio reactor with one change to the write path.

``FileDescriptor.write`` never sends inline: it buffers and asks the reactor
to watch the socket for writability, and ``doWrite`` later sends and stops
watching.  On ``AsyncioSelectorReactor`` each watch/unwatch is an asyncio
``add_writer``/``remove_writer`` -- a Handle, two ``epoll_ctl`` calls and a
loop iteration per response -- which profiling (bench/PROFILE.md) showed to
be the largest part of the asyncio reactor's cost against the epoll reactor.

``BridgeReactor`` instead collects connected sockets that want writing and
tries ``doWrite`` once for all of them on the next loop turn, from the top of
the loop (so no protocol callback re-enters).  Only a socket whose data did
not all go out is watched for writability, exactly as before.  Sockets that
are still connecting, pipes and other writers take the stock path.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.main import installReactor
from twisted.python.log import callWithLogger


class BridgeReactor(AsyncioSelectorReactor):
    """``AsyncioSelectorReactor`` that sends pending data before watching for writability."""

    def __init__(self, eventloop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(eventloop)
        self._pendingWriters: dict[Any, None] = {}
        self._flushScheduled = False
        self._flushBatch: dict[Any, None] = {}
        self._flushing: Any = None
        self._flushingStopped = False

    def addWriter(self, writer: Any) -> None:
        if writer in self._pendingWriters or writer in self._writers:
            return
        if not getattr(writer, "connected", False):
            super().addWriter(writer)
            return
        self._pendingWriters[writer] = None
        if not self._flushScheduled:
            self._flushScheduled = True
            self._asyncioEventloop.call_soon(self._flushPendingWriters)

    def removeWriter(self, writer: Any) -> None:
        if writer is self._flushing:
            self._flushingStopped = True
        self._pendingWriters.pop(writer, None)
        self._flushBatch.pop(writer, None)
        super().removeWriter(writer)

    def getWriters(self) -> list[Any]:
        writers: list[Any] = super().getWriters()
        return writers + [w for w in self._pendingWriters if w not in writers]

    def removeAll(self) -> list[Any]:
        pending = list(self._pendingWriters)
        self._pendingWriters.clear()
        removed: list[Any] = super().removeAll()
        return removed + [w for w in pending if w not in removed and w is not self.waker]

    def _flushPendingWriters(self) -> None:
        self._flushScheduled = False
        batch = self._flushBatch = self._pendingWriters
        self._pendingWriters = {}
        while batch:
            writer = next(iter(batch))
            del batch[writer]
            self._flushing, self._flushingStopped = writer, False
            try:
                callWithLogger(writer, self._readOrWrite, writer, False)
            finally:
                self._flushing = None
            # doWrite calls stopWriting() once everything is sent; otherwise
            # (a full socket buffer) fall back to watching for writability.
            if not self._flushingStopped and writer.fileno() != -1 and getattr(writer, "connected", False):
                AsyncioSelectorReactor.addWriter(self, writer)


def install(eventloop: asyncio.AbstractEventLoop | None = None) -> BridgeReactor:
    """Install ``BridgeReactor`` as Twisted's global reactor."""
    reactor = BridgeReactor(eventloop)
    installReactor(reactor)
    return reactor


__all__ = ["BridgeReactor", "install"]
