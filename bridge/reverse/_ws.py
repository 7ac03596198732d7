"""An ASGI ``websocket`` connection carried to a ``twisted.web`` resource tree.

The request is rendered as on a native Site.  ``WebSocketResource`` upgrades it while rendering
(``channel._protocolUpgradeForWebsockets``, the hook ``HTTPChannel`` offers it) and from then on
talks WebSocket bytes to ``channel.transport``; ``FrameMirror`` turns them into ASGI messages and
back.  Anything else the tree answers (404, Twisted's 400 for a bad handshake, a 500) goes out as
a ``websocket.http.response`` where the server supports that extension, else as a plain close
(which the server turns into 403).

Flow control: Twisted's protocol can ``attachProducer``; while the messages it wrote are not yet
taken by ``send()`` (the server awaits the socket draining), the producer is paused, as
``HTTPChannel`` pauses it on a full socket buffer.  Inbound, each message is handed to Twisted
before the next one is received, so a slow protocol holds back the server's reads.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from contextlib import suppress
from typing import Any

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IConsumer, IProtocol
from twisted.python.failure import Failure
from twisted.web.server import Site
from zope.interface import implementer

from bridge.reverse import _scope as scopes
from bridge.reverse._channel import HIGH_WATER, ASGIChannel, _Transport
from bridge.reverse._ws_frames import FrameMirror, HandshakeRefused
from bridge.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

#: Close codes that describe a connection lost without a close frame (RFC 6455 7.4.1).
_ABNORMAL = frozenset({1005, 1006, 1015})

_NO_PINGS = (
    "A Twisted WebSocket protocol called ping(), which cannot be carried over ASGI (it has no "
    "ping message): no pong will come. The ASGI server pings clients itself "
    "(Hypercorn: websocket_ping_interval; Uvicorn: --ws-ping-interval)."
)


class WebSocketChannel(ASGIChannel):
    """The channel of a request that arrived as an ASGI ``websocket`` scope."""

    def __init__(self, site: Site, scope: Scope) -> None:
        super().__init__(site, scope)
        self.transport = _WebSocketTransport(self)
        request: Any = self.request  # Request.__init__ took the channel's first transport
        request.transport = self.transport
        self.protocol: IProtocol | None = None
        self._mirror = FrameMirror()
        self._outbox: list[Message] = []
        self._pending = 0
        self._ws_producer: Any = None
        self._ws_paused = False
        self._closing = False
        self._ended = False
        self._pinged = False

    def _protocolUpgradeForWebsockets(self, protocol: IProtocol) -> None:
        """Called by ``WebSocketResource.render_GET``: the connection is the protocol's now."""
        self.protocol = protocol
        protocol.makeConnection(self.transport)  # type: ignore[arg-type]
        self._wake.set()

    # What Twisted's WebSocket protocol calls, through the transport.

    def ws_write(self, data: bytes) -> None:
        if self._ended:
            return
        try:
            decoded = self._mirror.from_twisted(data)
        except HandshakeRefused as refused:
            log.error("Twisted refused the WebSocket upgrade after starting it: %s", refused)
            self.ws_lose()
            return
        if decoded.pings and not self._pinged:
            self._pinged = True
            log.warning(_NO_PINGS)
        for message in decoded.messages:
            self._outbox.append(message)
            self._pending += len(message.get("text") or message.get("bytes") or b"")
        if self._ws_producer is not None and not self._ws_paused and self._pending >= HIGH_WATER:
            self._ws_paused = True
            self._ws_producer.pauseProducing()
        self._wake.set()

    def ws_lose(self) -> None:
        self._closing = True
        self._wake.set()

    def ws_register(self, producer: Any) -> None:
        self._ws_producer, self._ws_paused = producer, False
        if self._pending >= HIGH_WATER:
            self._ws_paused = True
            producer.pauseProducing()

    def ws_unregister(self) -> None:
        self._ws_producer = None
        self._ws_paused = False

    # The ASGI side.

    def end(self, reason: Failure) -> None:
        """The connection is over: tell the protocol once, as ``HTTPChannel.connectionLost`` would."""
        if self._ended:
            return
        self._ended = True
        if self._ws_producer is not None:
            self._ws_producer.stopProducing()
        assert self.protocol is not None
        self.protocol.connectionLost(reason)
        self._wake.set()

    async def pump_messages(self, send: Send) -> None:
        """Send what the protocol wrote, until it closed the connection or the client left."""
        closed = False
        while not self._ended:
            if self._outbox:
                messages, self._outbox = self._outbox, []
                for message in messages:
                    if not closed:
                        await send(message)
                    closed = closed or message["type"] == "websocket.close"
                self._pending = 0
                if self._ws_paused and self._ws_producer is not None:
                    self._ws_paused = False
                    self._ws_producer.resumeProducing()
            elif self._closing:
                if not closed:
                    await send({"type": "websocket.close", "code": 1000, "reason": ""})
                self.end(Failure(ConnectionDone("The WebSocket was closed by the server")))
            else:
                self._wake.clear()
                await self._wake.wait()

    async def feed(self, receive: Receive) -> None:
        """Hand each received message to the protocol, until the client disconnects."""
        assert self.protocol is not None
        while not self._ended:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.end(_disconnect_reason(message.get("code", 1005)))
                return
            if message["type"] == "websocket.receive":
                try:
                    self.protocol.dataReceived(self._mirror.to_twisted(message))
                except Exception:
                    # HTTPChannel would lose the connection; here it closes as an internal error.
                    log.exception("Twisted's WebSocket protocol failed on a message: closing with 1011")
                    self._outbox.append({"type": "websocket.close", "code": 1011, "reason": ""})
                    self.ws_lose()
                    return


def _disconnect_reason(code: int) -> Failure:
    if code in _ABNORMAL:
        return Failure(ConnectionLost(f"The client's WebSocket connection was lost (code {code})"))
    return Failure(ConnectionDone(f"The client closed the WebSocket with code {code}"))


@implementer(IConsumer)
class _WebSocketTransport(_Transport):
    """What Twisted's WebSocket protocol writes to and closes (``request.channel.transport``)."""

    _channel: WebSocketChannel

    def write(self, data: bytes) -> None:
        self._channel.ws_write(data)

    def writeSequence(self, data: list[bytes]) -> None:
        self._channel.ws_write(b"".join(data))

    def loseConnection(self) -> None:
        self._channel.ws_lose()

    abortConnection = loseConnection

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._channel.ws_register(producer)

    def unregisterProducer(self) -> None:
        self._channel.ws_unregister()


def upgrade_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The scope's headers, completed with the handshake headers an ASGI server may leave out.

    Twisted validates the handshake from the request headers; a server that carries the
    connection over HTTP/2 (RFC 8441) has no ``Upgrade`` or ``Sec-WebSocket-Key`` to pass on.
    """
    headers: list[tuple[bytes, bytes]] = [(name.lower(), value) for name, value in scope["headers"]]
    present = {name for name, _ in headers}
    key = base64.b64encode(os.urandom(16))
    for name, value in (
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", key),
    ):
        if name not in present:
            headers.append((name, value))
    return headers


async def serve_websocket(site: Site, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one ASGI ``websocket`` connection from the resource tree."""
    if (await receive())["type"] != "websocket.connect":
        return
    channel = WebSocketChannel(site, scope)
    request = channel.request
    for name, value in upgrade_headers(scope):
        request.requestHeaders.addRawHeader(name, value)
    request.parseCookies()
    request.gotLength(0)
    request.requestReceived(b"GET", scopes.request_uri(scope), b"HTTP/1.1")
    if channel.protocol is None:
        await _refuse(channel, scope, send)
        return
    await send({"type": "websocket.accept"})
    feeder = asyncio.create_task(channel.feed(receive))
    try:
        await channel.pump_messages(send)
    finally:
        feeder.cancel()
        with suppress(asyncio.CancelledError):
            await feeder
        channel.end(Failure(ConnectionLost("The ASGI WebSocket connection was abandoned")))


async def _refuse(channel: ASGIChannel, scope: Scope, send: Send) -> None:
    """The tree answered with an HTTP response instead of upgrading: pass it on if possible."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        channel.connectionLost(Failure(ConnectionDone("The WebSocket was refused")))
        await send({"type": "websocket.close", "code": 1000})
        return

    async def as_websocket_response(message: Message) -> None:
        await send({**message, "type": "websocket." + message["type"]})

    try:
        await channel.pump(as_websocket_response)
    finally:
        channel.connectionLost(Failure(ConnectionDone("The WebSocket was refused")))
