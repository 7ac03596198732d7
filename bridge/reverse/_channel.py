"""The channel a ``twisted.web.server.Request`` talks to when an ASGI server carries it.

A native ``HTTPChannel`` turns the Request's calls (``writeHeaders``, ``write``,
``registerProducer``, ``requestDone``) into bytes on a socket.  This one turns them into ASGI
``http.response.*`` messages.  Twisted calls it synchronously from reactor callbacks, while
ASGI's ``send()`` is a coroutine, so the calls only record what to send and ``pump()``, running
in the request's task, sends it.  Flow control follows ``HTTPChannel``: while ``send()`` has not
taken the data (the server awaits its socket draining), a push producer is paused and a pull
producer is not asked for more, so a slow client holds back a ``static.File`` instead of the
file piling up in memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress
from twisted.python.failure import Failure
from twisted.web.server import Request, Site

from bridge.reverse import _scope as scopes
from bridge.types import Message, Scope, Send

#: Buffered response bytes above which a push producer is paused (the size of one chunk of
#: ``static.File`` and of an asyncio transport's default write buffer).
HIGH_WATER = 64 * 1024


class ASGIChannel:
    """One request's channel: built from its scope, carrying its response to ``send``.

    @ivar request: The ``Request`` (from ``site.requestFactory``) that this channel carries.
    @ivar rootSegments: ``root_path`` as path segments, for L{RootPathSite}.
    """

    def __init__(self, site: Site, scope: Scope) -> None:
        self.site = site
        self.rootSegments = scopes.root_segments(scope)
        self.transport = _Transport(self)
        self._peer = scopes.to_address(scope.get("client"))
        self._host = scopes.to_address(scope.get("server"))
        self._secure = scopes.is_secure(scope)
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._producer: Any = None
        self._streaming = False
        self._paused = False
        self._done = False
        self._lost = False
        self._closed_by_resource = False
        self._wake = asyncio.Event()
        self.request: Request = site.requestFactory(self)

    # What twisted.web.http.Request calls.

    def getPeer(self) -> IAddress:
        return self._peer

    def getHost(self) -> IAddress:
        return self._host

    def isSecure(self) -> bool:
        return self._secure

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        # The ASGI server frames the body itself: undo the chunked encoding Request.write chose
        # for an HTTP/1.1 response without Content-Length (it checks `chunked` after this call).
        self.request.chunked = 0
        headers.removeHeader(b"Transfer-Encoding")
        self._start = {
            "type": "http.response.start",
            "status": int(code),
            "headers": [(name.lower(), value) for name, values in headers.getAllRawHeaders() for value in values],
        }
        self._wake.set()

    def write(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._streaming and not self._paused and self._buffered >= HIGH_WATER:
            self._paused = True
            self._producer.pauseProducing()
        self._wake.set()

    def writeSequence(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._producer, self._streaming, self._paused = producer, streaming, False
        if streaming and self._buffered >= HIGH_WATER:
            self._paused = True
            producer.pauseProducing()
        self._wake.set()

    def unregisterProducer(self) -> None:
        self._producer = None
        self._streaming = self._paused = False

    def requestDone(self, request: Request) -> None:
        self._done = True
        self._wake.set()

    def loseConnection(self) -> None:
        """Close the connection: an unfinished response is cut short, as on a socket."""
        if not self._done:
            self._closed_by_resource = True
            self.connectionLost(Failure(ConnectionDone("The resource closed the connection")))

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Request.requestReceived calls this for an unparseable multipart body.
        self._start = {"type": "http.response.start", "status": 400, "headers": []}
        self._done = True
        self._wake.set()

    # What the ASGI side calls.

    @property
    def finished(self) -> bool:
        """Whether the response is complete or the connection gone: nothing more to do."""
        return self._done or self._lost

    def connectionLost(self, reason: Failure) -> None:
        """The client left: stop the producer and fail ``notifyFinish()``, as ``HTTPChannel``."""
        if self.finished:
            return
        self._lost = True
        if self._producer is not None:
            self._producer.stopProducing()
        self.request.connectionLost(reason)
        self._wake.set()

    async def pump(self, send: Send) -> None:
        """Send the response as the Request produces it, until it finishes or the client leaves.

        Raises ``ConnectionAbortedError`` when the resource closed the connection before its
        response was complete, so that the server closes it too instead of reusing it.
        """
        while True:
            if self._lost:
                if self._closed_by_resource:
                    raise ConnectionAbortedError("the resource closed the connection")
                return
            if self._start is not None:
                start, self._start = self._start, None
                await send(start)
            elif self._chunks:
                body = b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                await send({"type": "http.response.body", "body": body, "more_body": True})
            elif self._done:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            elif self._producer is not None and (self._paused or not self._streaming):
                # Drained: let the producer go on.  A pull producer usually writes right here.
                self._wake.clear()
                self._paused = False
                self._producer.resumeProducing()
                if not self._wake.is_set():
                    await self._wake.wait()
            else:
                self._wake.clear()
                await self._wake.wait()


class _Transport:
    """The part of ``ITransport`` that resources reach through ``request.transport``."""

    def __init__(self, channel: ASGIChannel) -> None:
        self._channel = channel

    def getPeer(self) -> IAddress:
        return self._channel.getPeer()

    def getHost(self) -> IAddress:
        return self._channel.getHost()

    def loseConnection(self) -> None:
        self._channel.loseConnection()

    abortConnection = loseConnection
