"""HTTP/1.1 channel guards Twisted does not have: a header deadline and a connection cap.

Twisted's idle timeout is reset by every byte, so a client that trickles a
header line every few seconds (slowloris) holds a connection forever.
``GuardedHTTPChannel`` gives each request a deadline for its complete
headers, counted from the connection or the previous response; it also
bounds the idle time of a keep-alive connection.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol

_log = Logger(namespace="bridge.site")

_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_TOO_LARGE_RESPONSE = b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_OVERLOAD_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
)


class GuardedHTTPChannel(HTTPChannel):
    """An ``HTTPChannel`` whose requests must send their headers within ``headerTimeout``."""

    headerTimeout: float | None = 10.0
    _headerTimer: IDelayedCall | None = None
    _headerDeadline: float | None = None
    _partialRequest = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._armHeaderTimer()

    def dataReceived(self, data: bytes) -> None:
        self._partialRequest = True
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        # Twisted answers an oversized header block with a bare 400 and an
        # oversized line with silence; RFC 6585 has a status for both.
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._headersTooLarge()
        else:
            super().lineReceived(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self._headersTooLarge()

    def _headersTooLarge(self) -> None:
        assert self.transport is not None
        _log.info(
            "Refusing {peer}: request headers over {n} bytes",
            peer=str(self.transport.getPeer()),
            n=self.totalHeadersSize,
        )
        self.transport.write(_TOO_LARGE_RESPONSE)
        self.loseConnection()

    def allHeadersReceived(self) -> None:
        self._cancelHeaderTimer()
        super().allHeadersReceived()

    def requestDone(self, request: Any) -> None:
        # Arm before the base class replays pipelined bytes: if they hold
        # complete headers, allHeadersReceived cancels the timer again.
        if self.persistent:
            self._armHeaderTimer()
        super().requestDone(request)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        self._stopHeaderTimer()
        super().connectionLost(reason)

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
            transport.write(_TIMEOUT_RESPONSE)
        self.loseConnection()


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


__all__ = ["CountedHTTPProtocol", "GuardedHTTPChannel", "OverloadedProtocol"]
