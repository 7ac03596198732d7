"""The native Twisted twin of ``apps.py``: the same URLs and bytes as plain Twisted resources.

Written the way Twisted's documentation teaches: ``NOT_DONE_YET`` with ``callLater`` for the
delayed page (cancelled through ``notifyFinish`` when the client leaves), a push producer for the
download, ``request.content`` for the upload (Twisted has buffered the body by ``render`` time,
which is what the upload workload shows), ``twisted.web.websocket`` for the echo.
"""

from __future__ import annotations

import time

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.websocket import WebSocketResource, WebSocketTransport
from zope.interface import implementer

from bench.servers.apps import DEFAULT_CHUNK, DELAYED_BODY, HELLO, query_number, upload_report


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return HELLO


class Delayed(Resource):
    """The tutorial's "Asynchronous Responses" resource, with its "interrupted" follow-up."""

    isLeaf = True

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__()
        self.clock = clock

    def render_GET(self, request: Request) -> int:
        delay = query_number(request.uri.partition(b"?")[2], "delay", 5.0)
        call = self.clock.callLater(delay, self._finish, request)
        request.notifyFinish().addErrback(self._abandoned, call)
        return NOT_DONE_YET

    def _finish(self, request: Request) -> None:
        request.setHeader(b"content-type", b"text/html")
        request.write(DELAYED_BODY)
        request.finish()

    def _abandoned(self, reason: Failure, call: IDelayedCall) -> None:
        if call.active():
            call.cancel()


@implementer(IPushProducer)
class _ChunkProducer:
    """Writes fixed-size chunks until Twisted pauses it: the transport's own flow control."""

    def __init__(self, request: Request, size: int, chunk_size: int) -> None:
        self.request = request
        self.remaining = size
        self.chunk = b"x" * chunk_size
        self.paused = False
        self.done = False

    def resumeProducing(self) -> None:
        self.paused = False
        while not self.paused and not self.done:
            if self.remaining > len(self.chunk):
                self.remaining -= len(self.chunk)
                self.request.write(self.chunk)
            else:
                self.done = True
                self.request.write(self.chunk[: self.remaining])
                self.request.unregisterProducer()
                self.request.finish()

    def pauseProducing(self) -> None:
        self.paused = True

    def stopProducing(self) -> None:
        self.done = True


class Download(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:
        query = request.uri.partition(b"?")[2]
        size = int(query_number(query, "size", 0))
        producer = _ChunkProducer(request, size, int(query_number(query, "chunk", DEFAULT_CHUNK)))
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", str(size).encode())
        request.registerProducer(producer, True)
        producer.resumeProducing()
        return NOT_DONE_YET


class Upload(Resource):
    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        called_at = time.time()
        assert request.content is not None
        received = 0
        while chunk := request.content.read(DEFAULT_CHUNK):
            received += len(chunk)
        request.setHeader(b"content-type", b"application/json")
        return upload_report(received, called_at if received else None, called_at)


class _Echo:
    """A ``twisted.web.websocket`` protocol that sends every message back."""

    transport: WebSocketTransport

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        pass

    def pongReceived(self, payload: bytes) -> None:
        pass

    def textMessageReceived(self, message: str) -> None:
        self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.transport.sendBytesMessage(bytes(data))

    def connectionLost(self, reason: Failure) -> None:
        pass


class _EchoFactory:
    def buildProtocol(self, request: Request) -> _Echo:
        return _Echo()


def native_root(clock: IReactorTime) -> Resource:
    """The resource tree every native-Twisted row serves, timed by the installed reactor."""
    root = Resource()
    root.putChild(b"hello", Hello())
    root.putChild(b"delayed", Delayed(clock))
    root.putChild(b"download", Download())
    root.putChild(b"upload", Upload())
    root.putChild(b"ws", WebSocketResource(_EchoFactory()))
    return root
