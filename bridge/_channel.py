"""HTTP/1.1 channel guards Twisted does not have: a header deadline, a connection cap, strict framing.

Twisted's idle timeout is reset by every byte, so a client that trickles a
header line every few seconds (slowloris) holds a connection forever.
``GuardedHTTPChannel`` gives each request a deadline for its complete
headers, counted from the connection or the previous response; it also
bounds the idle time of a keep-alive connection.  When Twisted's idle timeout
cuts a request whose body stopped arriving, it says 408 first.

It also refuses, with 400 and a close, the requests that Twisted 26.10 reads
one way and another HTTP parser (a proxy in front) could read another --
the request smuggling vectors of RFC 9112 sections 3.2, 5.2, 6.1 and 7.1:
obsolete line folding, a Transfer-Encoding other than exactly ``chunked``
(Twisted ignores ``identity``, even beside ``chunked`` or Content-Length),
Transfer-Encoding on HTTP/1.0, zero or several Host headers, a bare LF,
chunk sizes beyond 60 bits.  Twisted's own checks already refuse
Content-Length with Transfer-Encoding, repeated or malformed
Content-Length, NUL/CR/LF in headers, bad chunk sizes, extensions and
terminators.  ``tests/hardening/test_malformed.py`` covers each vector.
"""

from __future__ import annotations

import re
from time import monotonic
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import (
    HTTPChannel,
    _ChunkedTransferDecoder,
    _GenericHTTPChannelProtocol,
    _MalformedChunkedDataError,
    maxChunkSizeLineLength,
)
from twisted.web.http_headers import Headers

_log = Logger(namespace="bridge.site")

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_REFUSALS = {
    400: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    505: b"HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
}
_HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_OVERLOAD_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
)


class ChannelAnswered(ConnectionDone):
    """The channel answered the request itself (400, 408, 431, 505) and is closing.

    Requests in progress get it through ``connectionLost`` the moment the
    channel's own answer is written, so their ``notifyFinish()`` fails and
    nothing a resource or an ASGI app writes later reaches the wire: one
    response per request.
    """


class GuardedHTTPChannel(HTTPChannel):
    """An ``HTTPChannel`` whose requests must send their headers within ``headerTimeout``."""

    headerTimeout: float | None = 10.0
    _headerTimer: IDelayedCall | None = None
    _headerDeadline: float | None = None
    _partialRequest = False
    _hostHeaders = 0
    _refused = False
    _localAddress: Any = None
    _idleDeadline: float | None = None
    _idleTimer: IDelayedCall | None = None

    #: Set by ``StreamingRequest.write`` around a response's first write:
    #: the head waits for the body, so both go out in one ``send()``.
    _holdHead = False
    _heldHead: list[bytes] | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._armHeaderTimer()

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        if not (self._holdHead and isinstance(headers, Headers)):
            super().writeHeaders(version, code, reason, headers)
            return
        head = [version, b" ", code, b" ", reason, b"\r\n"]
        for name, values in headers.getAllRawHeaders():
            for value in values:
                head.extend((name, b": ", value, b"\r\n"))
        head.append(b"\r\n")
        self._heldHead = head

    def write(self, data: bytes) -> None:
        if self._heldHead is not None:
            self.writeSequence([data])
        else:
            super().write(data)

    def writeSequence(self, iovec: list[bytes]) -> None:
        head, self._heldHead = self._heldHead, None
        super().writeSequence(iovec if head is None else head + list(iovec))

    def flushHeldHead(self) -> None:
        """Write a held head that no body followed (HEAD, 204, 304, an empty first write)."""
        self._holdHead = False
        head, self._heldHead = self._heldHead, None
        if head is not None:
            super().writeSequence(head)

    def getHost(self) -> Any:
        # Twisted's Request asks for it on every request, and TCP answers
        # with a getsockname() system call; it cannot change on a connection.
        if self._localAddress is None:
            self._localAddress = super().getHost()
        return self._localAddress

    def dataReceived(self, data: bytes) -> None:
        self._partialRequest = True
        super().dataReceived(data)
        # Twisted splits lines at CRLF only, so a line ended by a bare LF
        # would wait for the header deadline before being refused: refuse it now.
        if self.line_mode and b"\n" in self._buffer.partition(b"\r\n")[0] and not self._closing():
            self._refuse(400, "bare LF in the request head")

    def lineReceived(self, line: bytes) -> None:
        # Twisted answers an oversized header block with a bare 400 and an
        # oversized line with silence; RFC 6585 has a status for both.
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse(431, f"request headers over {self.totalHeadersSize} bytes")
        elif problem := self._lineProblem(line):
            self._refuse(*problem)
        else:
            super().lineReceived(line)

    def _lineProblem(self, line: bytes) -> tuple[int, str] | None:
        if not line:
            return None
        if not hasattr(self, "_command"):  # no request line yet: this is it
            parts = line.split(b" ")
            if len(parts) != 3:
                return None  # Twisted refuses it
            _, target, version = parts
            if version not in (b"HTTP/1.1", b"HTTP/1.0") and _HTTP_VERSION.fullmatch(version):
                return 505, f"unsupported version {version.decode()}"
            # Twisted means to allow printable ASCII only, but lets 0x7f-0xb0 through.
            if not target.isascii() or b"\x7f" in target:
                return 400, "a byte outside printable ASCII in the request target"
        elif line[:1] in (b" ", b"\t"):
            # Twisted joins folded lines; a proxy may see a header of its own there.
            return 400, "obsolete line folding"
        return None

    def headerReceived(self, line: bytes) -> bool:
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"host":
            self._hostHeaders += 1
            if self._hostHeaders > 1:
                self._refuse(400, "more than one Host header")
                return False
        elif name == b"transfer-encoding" and (
            value.strip(b" \t").lower() != b"chunked" or self._version != b"HTTP/1.1"
        ):
            self._refuse(400, "a Transfer-Encoding other than chunked on HTTP/1.1")
            return False
        ok: bool = super().headerReceived(line)
        if ok and name == b"transfer-encoding":
            self._transferDecoder = _StrictChunkedDecoder(self.requests[-1].handleContentChunk, self._finishRequestBody)
        return ok

    def lineLengthExceeded(self, line: bytes) -> None:
        self._refuse(431, f"request headers over {self.totalHeadersSize} bytes")

    def _refuse(self, status: int, reason: str) -> None:
        assert self.transport is not None
        _log.info("Refusing {peer}: {reason}", peer=str(self.transport.getPeer()), reason=reason)
        self._answer(_REFUSALS[status])
        self.loseConnection()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's own refusals (a malformed chunk, a bad header line...).
        assert self.transport is not None
        _log.info("Refusing {peer}: malformed request", peer=str(self.transport.getPeer()))
        self._answer(_REFUSALS[400])
        self.loseConnection()

    def _answer(self, response: bytes) -> None:
        """Answer the request in progress ourselves: it will never write its own response.

        Its resource or app gets ``ChannelAnswered`` through ``connectionLost``
        first; if its response had already started, ours is not written (it
        would land inside that response): the connection just closes.
        """
        assert self.transport is not None
        self._refused = True
        started = False
        for request in list(self.requests):
            if not request.finished and not request._disconnected:
                started = started or bool(request.startedWriting)
                request.connectionLost(Failure(ChannelAnswered(response.split(b"\r\n", 1)[0].decode())))
        if not started:
            self.transport.write(response)
        answered = getattr(getattr(self, "factory", None), "channelAnswered", None)
        if answered is not None:
            answered(int(response.split(b" ", 2)[1]))

    def _closing(self) -> bool:
        return self.transport is None or bool(getattr(self.transport, "disconnecting", False))

    def allHeadersReceived(self) -> None:
        self._cancelHeaderTimer()
        hosts, self._hostHeaders = self._hostHeaders, 0
        if not hosts and self._version == b"HTTP/1.1":
            self._refuse(400, "no Host header in an HTTP/1.1 request")
        else:
            super().allHeadersReceived()

    def allContentReceived(self) -> None:
        if not self._refused:  # the base class would process the refused request
            super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Arm before the base class replays pipelined bytes: if they hold
        # complete headers, allHeadersReceived cancels the timer again.
        if self.persistent:
            self._armHeaderTimer()
        super().requestDone(request)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._stopHeaderTimer()
        super().connectionLost(reason)
        self._stopIdleTimer()

    def _protocolUpgradeForWebsockets(self, protocol: IProtocol) -> None:
        # The WebSocket takes connectionLost over, so the timers would outlive the connection.
        self._stopHeaderTimer()
        self._stopIdleTimer()
        super()._protocolUpgradeForWebsockets(protocol)

    # The deadline moves on every request; rescheduling a reactor timer that
    # often is costly on the asyncio reactor, so one timer is kept per
    # connection and, when it fires early, re-armed for the time left.
    def _armHeaderTimer(self) -> None:
        self._partialRequest = False
        if self.headerTimeout is None:
            return
        self._headerDeadline = monotonic() + self.headerTimeout
        if self._headerTimer is None:
            self._headerTimer = self.callLater(self.headerTimeout, self._headerTimerFired)

    def _cancelHeaderTimer(self) -> None:
        self._headerDeadline = None

    def _stopHeaderTimer(self) -> None:
        self._headerDeadline = None
        if self._headerTimer is not None and self._headerTimer.active():
            self._headerTimer.cancel()
        self._headerTimer = None

    def _headerTimerFired(self) -> None:
        self._headerTimer = None
        if self._headerDeadline is None:
            return
        left = self._headerDeadline - monotonic()
        if left > 0:
            self._headerTimer = self.callLater(left, self._headerTimerFired)
        else:
            self._headersTimedOut()

    # -- the idle timeout, kept as a deadline -------------------------------------
    # HTTPChannel switches it off and on around every request (TimeoutMixin.setTimeout), which on
    # the asyncio reactor schedules and cancels a timer per request; here one timer per connection
    # is kept and, when it fires early, re-armed for the time left (as the header timer above).

    def setTimeout(self, period: float | None) -> float | None:
        previous = self.timeOut
        self.timeOut = period  # type: ignore[assignment]  # TimeoutMixin says int; sites pass seconds as float
        self._idleDeadline = None if period is None else monotonic() + period
        if period is not None and self._idleTimer is None:
            self._idleTimer = self.callLater(period, self._idleTimerFired)
        return previous

    def resetTimeout(self) -> None:
        if self._idleDeadline is not None and self.timeOut is not None:
            self._idleDeadline = monotonic() + self.timeOut

    def _idleTimerFired(self) -> None:
        self._idleTimer = None
        if self._idleDeadline is None:
            return
        left = self._idleDeadline - monotonic()
        if left > 0:
            self._idleTimer = self.callLater(left, self._idleTimerFired)
        else:
            self._idleDeadline = None
            self.timeoutConnection()

    def _stopIdleTimer(self) -> None:
        self._idleDeadline = None
        if self._idleTimer is not None and self._idleTimer.active():
            self._idleTimer.cancel()
        self._idleTimer = None

    def timeoutConnection(self) -> None:
        # Twisted's idle timeout hangs up silently; a request whose body stopped
        # arriving, and which nothing has answered yet, is told why first.
        request = self.requests[-1] if self.requests else None
        if request is not None and not request.startedWriting and not self._closing():
            self._answer(_TIMEOUT_RESPONSE)
        super().timeoutConnection()

    def _headersTimedOut(self) -> None:
        transport = self.transport
        if transport is None or getattr(transport, "negotiatedProtocol", None) == b"h2":
            return  # the connection moved to HTTP/2, which has its own timeouts
        if self._partialRequest:
            _log.info(
                "Closing {peer}: request headers incomplete after {timeout:g} s",
                peer=str(transport.getPeer()),
                timeout=self.headerTimeout,
            )
            self._answer(_TIMEOUT_RESPONSE)
        self.loseConnection()


class _StrictChunkedDecoder(_ChunkedTransferDecoder):
    """Twisted's chunked decoder, also refusing a bare LF in a size or trailer line and sizes over 60 bits.

    Twisted would wait for a CRLF that never comes, and parses any length of
    hex digits where a proxy with 64-bit sizes could overflow.
    """

    def _dataReceived_CHUNK_LENGTH(self) -> bool:
        line = self._line()
        if len(line.partition(b";")[0].lstrip(b"0")) > 15:
            raise _MalformedChunkedDataError("Chunk size over 60 bits.")
        return super()._dataReceived_CHUNK_LENGTH()

    def _dataReceived_TRAILER(self) -> bool:
        self._line()
        return super()._dataReceived_TRAILER()

    def _line(self) -> bytes:
        end = self._buffer.find(b"\r\n", 0, maxChunkSizeLineLength + 2)
        line = bytes(self._buffer[: end if end >= 0 else maxChunkSizeLineLength + 2])
        if b"\n" in line:
            raise _MalformedChunkedDataError("Bare LF in a chunked body.")
        return line


class OverloadedProtocol(Protocol):
    """Answers 503 and hangs up: used beyond the site's connection limit."""

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(_OVERLOAD_RESPONSE)
        self.transport.loseConnection()


class CountedHTTPProtocol(_GenericHTTPChannelProtocol):
    """Twisted's HTTP/1.1-or-HTTP/2 protocol, telling its factory when it closes."""

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            self.factory.connectionClosed()


__all__ = ["ChannelAnswered", "CountedHTTPProtocol", "GuardedHTTPChannel", "OverloadedProtocol"]
