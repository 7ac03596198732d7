"""Twisted's asyncio reactor, writing the way asyncio's own transports do.

``FileDescriptor.write`` never sends inline: it buffers and asks the reactor
to watch the socket for writability (``startWriting`` -> ``addWriter``), and
``doWrite`` sends later.  So when an ASGI app's ``await send(...)`` returns,
its bytes still sit in Twisted's buffer until the loop turns, against ASGI's
"flush ... into the send buffer before returning from a send call"; an app
that then computes before its next await delays its own response.  Each
watch/unwatch is also an asyncio ``add_writer``/``remove_writer`` (a Handle,
two ``epoll_ctl`` calls), the largest part of the asyncio reactor's cost
against the epoll reactor (bench/PROFILE.md).

``BridgeReactor.addWriter`` therefore, for a connected TCP or unix socket with
nothing already queued, sends the new data at once with the transport's own
``writeSomeData`` (as ``asyncio.selector_events._SelectorSocketTransport``
does) and keeps only what the kernel refused, which is then watched for
writability as before.  What ``doWrite`` does besides sending -- resuming a
paused or pull producer, closing after ``loseConnection``, half-closing --
never runs inside the caller's ``write()``: such writers are flushed through
``doWrite`` once on the next loop turn, from the top of the loop, and watched
only if data remains.  A send that fails reports ``connectionLost`` on the
next loop turn too, as asyncio defers ``connection_lost`` with ``call_soon``.
Sockets that are still connecting, pipes and other writers keep the flush on
the next turn (connected) or the stock path (not connected).  ``listenSSL``
and ``connectSSL`` (and so ``ssl:`` endpoints) use a TLS protocol that does
not hold small writes back for a reactor iteration (``_ImmediateTLSFactory``).

Streaming producers are paused exactly as before: ``write()`` pauses one when
Twisted's own buffer passes ``bufferSize``, which now only holds what the
kernel refused.  One ordering changes for unix sockets: bytes written before a
``sendFileDescriptor`` call may already be gone, so write at least one byte
after queueing a descriptor (Twisted documents no order between the two).

On uvloop, ``add_reader`` is a libuv poll handle, and libuv stops polling a
descriptor for good when it reports an error (``POLLERR``, as a reset does):
uvloop runs the read callback once and closes the handle.  Twisted reads one
buffer per callback, so a reset that arrives behind unread data would never be
seen.  After each read on uvloop the socket's pending error (``SO_ERROR``, one
``getsockopt``) is therefore checked, and a pending error loses the
connection as a failed ``recv`` would; it costs about 2 us a request (a
native hello on httptools + uvloop: 0.0426 against 0.0406 ms of server CPU,
three alternating runs).  uvloop also takes Python's signal
wake-up descriptor when it runs, where Twisted listens for ``SIGCHLD``, so on
uvloop child processes are reaped from a Python ``SIGCHLD`` handler instead
(``_LoopChildSignalHandling``).
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Any

from twisted.internet import process, tcp
from twisted.internet._signals import _MultiSignalHandling
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.base import ReactorBase
from twisted.internet.main import CONNECTION_LOST, installReactor
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.log import callWithLogger


class BridgeReactor(AsyncioSelectorReactor):
    """``AsyncioSelectorReactor`` whose socket writes go out before ``write()`` returns."""

    def __init__(self, eventloop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(eventloop)
        #: Writers that ``doWrite`` once on the next loop turn.
        self._pendingWriters: dict[Any, None] = {}
        self._flushScheduled = False
        self._flushBatch: dict[Any, None] = {}
        self._flushing: Any = None
        self._flushingStopped = False
        #: Writers whose inline send failed, with why; their connectionLost is due next turn.
        self._failedWriters: dict[Any, BaseException] = {}
        #: Writers emptied inline this turn: a pull producer registered after
        #: the write still gets the resumeProducing a drained buffer brings.
        self._sentInline: dict[Any, None] = {}
        #: uvloop stops polling a descriptor that reported an error, and takes
        #: the signal wake-up descriptor (see the module docstring).
        self._onUvloop = type(self._asyncioEventloop).__module__.partition(".")[0] == "uvloop"
        if self._onUvloop:
            # An instance attribute: addReader/addWriter register self._readOrWrite, and the
            # asyncio loop's path pays for no extra call.
            self._readOrWrite = self._readOrWriteOnUvloop  # type: ignore[method-assign]

    def _signalsFactory(self) -> Any:
        if not self._onUvloop:
            return super()._signalsFactory()
        children = _LoopChildSignalHandling(self._asyncioEventloop)
        return _MultiSignalHandling((ReactorBase._signalsFactory(self), children))

    def _readOrWriteOnUvloop(self, selectable: Any, read: bool) -> None:
        """``_readOrWrite``, then after a read the socket's pending error (see the module docstring)."""
        AsyncioSelectorReactor._readOrWrite(self, selectable, read)
        if read and isinstance(selectable, tcp.Connection) and not selectable.disconnected:
            try:
                error = selectable.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError:
                error = 1
            if error:
                self._disconnectSelectable(selectable, CONNECTION_LOST, True)

    def addWriter(self, writer: Any) -> None:
        if writer in self._pendingWriters or writer in self._writers or writer in self._failedWriters:
            return
        if not getattr(writer, "connected", False):
            super().addWriter(writer)
            return
        if _canSendInline(writer) and self._sendInline(writer):
            return
        self._pendingWriters[writer] = None
        self._scheduleFlush()

    def _scheduleFlush(self) -> None:
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

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = "") -> Any:
        tlsFactory = _ImmediateTLSFactory(contextFactory, False, factory, self)
        listening = self.listenTCP(port, tlsFactory, backlog, interface)
        listening._type = "TLS"  # as PosixReactorBase.listenSSL names it in logs
        return listening

    def connectSSL(
        self,
        host: str,
        port: int,
        factory: Any,
        contextFactory: Any,
        timeout: float = 30,
        bindAddress: tuple[str, int] | None = None,
    ) -> Any:
        tlsFactory = _ImmediateTLSFactory(contextFactory, True, factory, self)
        return self.connectTCP(host, port, tlsFactory, timeout, bindAddress)

    def _sendInline(self, writer: Any) -> bool:
        """Send ``writer``'s queued data now; ``False`` if it still needs a ``doWrite`` next turn.

        Leaves the buffers as ``doWrite`` would after a partial send, so the
        watched path picks up exactly where this one stopped.
        """
        chunks: list[bytes] = writer._tempDataBuffer
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        writer._tempDataBuffer = []
        writer._tempDataLen = 0
        result = writer.writeSomeData(data)
        sent = 0
        while True:
            if isinstance(result, BaseException) or result < 0:
                self._failInline(writer, result)
                return True
            sent += result
            # writeSomeData sends at most SEND_LIMIT bytes; less than that means the kernel is full.
            if sent == len(data) or result < writer.SEND_LIMIT:
                break
            result = writer.writeSomeData(memoryview(data)[sent:])
        if sent < len(data):
            writer.dataBuffer, writer.offset = data, sent
            AsyncioSelectorReactor.addWriter(self, writer)
            return True
        writer.dataBuffer, writer.offset = b"", 0
        if _awaitsResume(writer):
            return False
        self._sentInline[writer] = None
        self._scheduleFlush()
        return True

    def _failInline(self, writer: Any, why: BaseException | int) -> None:
        """Report the failed send with connectionLost on the next loop turn, never inside write()."""
        self._failedWriters[writer] = why if isinstance(why, BaseException) else CONNECTION_LOST
        self._asyncioEventloop.call_soon(self._reportFailedWriter, writer)

    def _reportFailedWriter(self, writer: Any) -> None:
        why = self._failedWriters.pop(writer)
        # Lost meanwhile (a read saw the reset), or abortConnection() already
        # scheduled its own connectionLost: report nothing twice.
        if writer.disconnected or getattr(writer, "_aborting", False):
            return
        callWithLogger(writer, self._disconnectSelectable, writer, why, False)

    def _flushPendingWriters(self) -> None:
        self._flushScheduled = False
        sent, self._sentInline = self._sentInline, {}
        for writer in sent:
            idle = writer not in self._writers and writer not in self._failedWriters
            if idle and getattr(writer, "connected", False) and _awaitsResume(writer):
                self._pendingWriters[writer] = None
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


class _LoopChildSignalHandling:
    """Reap child processes on ``SIGCHLD`` from the loop, for uvloop.

    Twisted's own handling is a no-op Python handler plus ``set_wakeup_fd`` on
    its waker; uvloop points the wake-up descriptor at its own socket when it
    runs (and refuses ``add_signal_handler(SIGCHLD)``), so Twisted's waker
    would never be written.  Python still runs the handler itself on the
    loop's thread, so the handler schedules the reaping.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _received(self, signum: int, frame: object) -> None:
        self._loop.call_soon_threadsafe(process.reapAllProcesses)

    def install(self) -> None:
        signal.signal(signal.SIGCHLD, self._received)
        signal.siginterrupt(signal.SIGCHLD, False)
        process.reapAllProcesses()  # children that exited before this was installed

    def uninstall(self) -> None:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


class _ImmediateTLSFactory(TLSMemoryBIOFactory):
    """TLS whose writes are encrypted and handed to the TCP transport at once, as asyncio's are.

    Twisted's default TLS protocol, ``BufferingTLSTransport``, holds writes
    smaller than 64 kB until the next reactor iteration (``callLater(0)``) to
    make fewer TLS records; that would undo the inline send for every
    response over TLS.  The price is one record (and one send) per write.
    """

    protocol = TLSMemoryBIOProtocol


def _awaitsResume(writer: Any) -> bool:
    """Whether ``doWrite`` would resume ``writer``'s producer once its buffer is empty.

    That is a pull producer, or a streaming one that a ``write()`` paused.
    """
    return writer.producer is not None and (not writer.streamingProducer or writer.producerPaused)


def _canSendInline(writer: Any) -> bool:
    """Whether ``writer`` is a connected socket with fresh data and nothing else to do first.

    Anything ``doWrite`` must handle itself -- an earlier partial send still
    queued, a close or half-close requested, an aborted connection, file
    descriptors waiting to ride along (unix sockets) -- keeps the ``doWrite``
    path, so ordering and Twisted's semantics are untouched.
    """
    return (
        isinstance(writer, tcp.Connection)
        and writer._tempDataLen > 0
        and writer.offset == len(writer.dataBuffer)
        and not writer.disconnecting
        and not writer._writeDisconnecting
        and not writer._aborting
        and not getattr(writer, "_sendmsgQueue", None)
    )


def install(eventloop: asyncio.AbstractEventLoop | None = None) -> BridgeReactor:
    """Install ``BridgeReactor`` as Twisted's global reactor."""
    reactor = BridgeReactor(eventloop)
    installReactor(reactor)
    return reactor


__all__ = ["BridgeReactor", "install"]
