"""``HttpToolsChannel``: Twisted's HTTP/1.1 channel with llhttp, a C parser, reading the request heads.

Twisted's ``HTTPChannel`` parses in Python, line by line (``LineReceiver``).
This channel frames each head itself (up to the first CRLF CRLF, a search in
C), hands it to llhttp through ``bridge._h1_head`` and builds the very
``twisted.web.server.Request`` the Twisted parser builds, with the same calls
in the same order (``requestFactory``, headers, ``allHeadersReceived``,
``gotLength``, ``handleContentChunk``, ``requestReceived``); everything from
there on -- responses, producers, keep-alive, pipelining, ``Expect:
100-continue``, timeouts, the WebSocket upgrade, the switch to HTTP/2 after
ALPN -- is ``GuardedHTTPChannel``'s own code.  Bodies are framed by Twisted's
decoders (the strict chunked one of ``bridge._channel``), so a body is read
the same way whichever parser read its head.

The one shortcut towards ASGI: the request's ``Headers`` are a
``ParsedHeaders`` carrying llhttp's list of lowercased pairs, which an
``ASGIResource`` takes as the scope's ``headers`` unless something changed the
headers first (``bridge._parsed_headers``).

What differs from the Twisted parser, on purpose: when the channel answers a
request itself (400, 408, 431, 505), the requests it was serving are told the
connection is gone first (``connectionLost``), so nothing a resource or an
ASGI app writes afterwards reaches the wire; and bytes that follow an
upgrade request reach the new protocol instead of being dropped.
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IProtocol
from twisted.web.http import _IdentityTransferDecoder, _MalformedChunkedDataError
from twisted.web.http_headers import Headers

from bridge._channel import GuardedHTTPChannel, _StrictChunkedDecoder
from bridge._h1_head import HeadParser, Refusal
from bridge._parsed_headers import ParsedHeaders


class HttpToolsChannel(GuardedHTTPChannel):
    """A ``GuardedHTTPChannel`` whose request heads are parsed by llhttp."""

    parser_name = "httptools"

    _buffer = b""
    _parsing = False
    _crlfEaten = False
    _heads: HeadParser | None = None
    _upgraded = False
    _peer: IAddress | None = None

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self._partialRequest = True
        self._buffer = self._buffer + data if self._buffer else data
        if self._handlingRequest:
            # Head-of-line blocking, as HTTPChannel does: keep what follows, stop reading beyond a bound.
            if len(self._buffer) > self._optimisticEagerReadSize and not self._waitingForTransport:
                self._networkProducer.pauseProducing()
        elif not self._parsing:
            self._parse()

    def _parse(self) -> None:
        """Read heads and bodies from the buffer until it runs out or a request is being handled."""
        self._parsing = True
        try:
            while self._buffer and not self._handlingRequest and not self._refused and not self._upgraded:
                decoder = self._transferDecoder
                if decoder is not None:
                    data, self._buffer = self._buffer, b""
                    try:
                        decoder.dataReceived(data)  # at the end, _finishRequestBody puts the rest back
                    except _MalformedChunkedDataError:
                        self._refuse(400, "malformed chunked request body")
                elif not self._nextHead():
                    break
        finally:
            self._parsing = False

    def _nextHead(self) -> bool:
        """Start the request whose head is complete in the buffer; False if it is not complete yet."""
        buffer = self._buffer
        if not self._crlfEaten and buffer[:2] == b"\r\n":
            # Twisted skips one empty line before a request line (some clients send CRLF after a POST body).
            buffer = self._buffer = buffer[2:]
            self._crlfEaten = True
        heads = self._heads
        if heads is None:
            heads = self._heads = HeadParser(self.maxHeaders)
        end = buffer.find(b"\r\n\r\n")
        try:
            if end < 0:
                heads.check_partial(buffer, self.totalHeadersSize)
                return False
            end += 4
            data, self._buffer = buffer[:end], buffer[end:]
            self._crlfEaten = False
            heads.check_size(data, self.totalHeadersSize)
            head = heads.parse(data)
        except Refusal as refusal:
            self._refuse(refusal.status, refusal.reason)
            return False
        request = self.requestFactory(self, len(self.requests))
        self.requests.append(request)
        self._command, self._path, self._version = head.method, head.target, head.version
        given = request.requestHeaders
        if type(given) is Headers and not given._rawHeaders:
            request.requestHeaders = ParsedHeaders.from_parser(head.headers)
        else:  # a request factory that set up headers of its own keeps them
            for name, value in head.headers:
                given.addRawHeader(name, value)
        self._hostHeaders = head.hosts
        self.length = length = head.length
        if length is None:
            self._transferDecoder = _StrictChunkedDecoder(request.handleContentChunk, self._finishRequestBody)
        elif length:
            self._transferDecoder = _IdentityTransferDecoder(
                length, request.handleContentChunk, self._finishRequestBody
            )
        self.allHeadersReceived()
        if self._refused:
            return False
        if not length and length is not None:
            self.allContentReceived()
        return True

    def _finishRequestBody(self, data: bytes) -> None:
        self._buffer = data
        self.allContentReceived()

    def requestDone(self, request: object) -> None:
        if request != self.requests[0]:
            raise TypeError
        del self.requests[0]
        if not self._waitingForTransport:
            self._networkProducer.resumeProducing()
        if not self.persistent:
            self.loseConnection()
            return
        self._armHeaderTimer()
        self._handlingRequest = False
        if self._savedTimeOut:
            self.setTimeout(self._savedTimeOut)
        if not self._parsing:
            self._parse()

    def getPeer(self) -> IAddress:
        # Each Request asks, and a TCP transport answers with a new address object every time.
        if self._peer is None:
            self._peer = super().getPeer()
        return self._peer

    # -- the channel answering a request itself ----------------------------------

    def _answer(self, response: bytes) -> None:
        # GuardedHTTPChannel tells the requests in progress (ChannelAnswered) and writes the
        # answer unless a response already started; the parse loop then has no request left.
        super()._answer(response)
        self.requests = []

    def _protocolUpgradeForWebsockets(self, protocol: IProtocol) -> None:
        self._upgraded = True
        super()._protocolUpgradeForWebsockets(protocol)
        rest, self._buffer = self._buffer, b""
        if rest:
            protocol.dataReceived(rest)


__all__ = ["HttpToolsChannel"]
