"""WebSocketSession driven in process: a real StreamingSite channel over Twisted's StringTransport.

Real sockets cannot show deterministically that the server *stopped reading* (only that a
client eventually blocks); here the transport's producer state says it directly.  The app runs
on a plain asyncio loop; nothing here needs the global reactor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import Ping, Pong, TextMessage

from bridge._app_call import Runner
from bridge._options import InFlight, Options
from bridge._ws_inbox import BACKLOG_MESSAGES
from bridge.site import StreamingSite
from bridge.types import ASGIApp
from bridge.websocket import WebSockets
from tests.bridge.loop_turns import settle

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Leaf(Resource):
    """Hands upgrade requests to a ``WebSockets``, as ASGIResource.render does."""

    isLeaf = True

    def __init__(self, websockets: WebSockets) -> None:
        super().__init__()
        self.websockets = websockets
        self.requests: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        self.requests.append(request)
        self.websockets.render(request)
        return NOT_DONE_YET


def serve(
    app: App, loop: asyncio.AbstractEventLoop, ping: float | None = None
) -> tuple[StreamingSite, Leaf, Any, StringTransport]:
    # Only what WebSockets reads from its ASGIResource; the global reactor stays untouched.
    options = Options(disconnect_grace=1.0, ws_max_message_size=None, ws_ping_interval=ping, ws_ping_timeout=ping)
    websockets = WebSockets(Runner(cast(ASGIApp, app), options, InFlight(), loop, Clock()))
    leaf = Leaf(websockets)
    root = Resource()
    root.putChild(b"ws", leaf)
    site = StreamingSite(root, reactor=MemoryReactorClock())
    channel: Any = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return site, leaf, channel, transport


def test_reading_pauses_while_the_app_has_a_backlog_and_resumes_as_it_reads() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        got: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await gate.wait()
            while (message := await receive())["type"] != "websocket.disconnect":
                got.append(message)

        _, leaf, channel, transport = serve(app, asyncio.get_running_loop())
        channel.dataReceived(UPGRADE)
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 101 "))
        client = Connection(ConnectionType.CLIENT)
        for i in range(BACKLOG_MESSAGES):
            assert transport.producerState == "producing"
            channel.dataReceived(client.send(TextMessage(data=str(i))))
        assert transport.producerState == "paused"
        gate.set()
        await settle(lambda: len(got) == BACKLOG_MESSAGES)
        assert transport.producerState == "producing"
        assert [m["text"] for m in got] == [str(i) for i in range(BACKLOG_MESSAGES)]
        channel.connectionLost(Failure(ConnectionDone()))
        await settle(lambda: leaf.websockets.open == 0)

    asyncio.run(main())


def test_the_upgraded_request_finishes_when_the_websocket_ends() -> None:
    """notifyFinish() fires on the takeover's end, so the site's in-flight count goes back to 0."""

    async def main() -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

        site, leaf, channel, transport = serve(app, asyncio.get_running_loop())
        channel.dataReceived(UPGRADE)
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 101 "))
        assert site.in_flight == 1
        finished: list[Failure] = []
        leaf.requests[0].notifyFinish().addErrback(finished.append)
        channel.connectionLost(Failure(ConnectionDone()))
        assert len(finished) == 1 and finished[0].check(ConnectionDone)
        assert site.in_flight == 0
        await settle(lambda: leaf.websockets.open == 0)

    asyncio.run(main())


def test_pings_are_not_answered_nor_read_while_the_transport_cannot_take_the_pongs() -> None:
    """Issue 15 item 4: a peer whose replies cannot be written stops being read, until they can."""

    async def main() -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            await receive()

        _, leaf, channel, transport = serve(app, asyncio.get_running_loop())
        channel.dataReceived(UPGRADE)
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 101 "))
        client = Connection(ConnectionType.CLIENT)
        transport.clear()
        session: Any = transport.producer
        session.pauseProducing()  # what Twisted does once its write buffer is over bufferSize
        channel.dataReceived(b"".join(client.send(Ping(payload=b"%d" % i)) for i in range(100)))
        assert transport.value() == b""
        assert transport.producerState == "paused"
        session.resumeProducing()  # the buffer drained
        assert transport.producerState == "producing"
        client.receive_data(transport.value())
        assert list(client.events()) == [Pong(payload=b"%d" % i) for i in range(100)]
        channel.connectionLost(Failure(ConnectionDone()))
        await settle(lambda: leaf.websockets.open == 0)

    asyncio.run(main())


def test_send_has_written_the_frame_to_the_transport_when_it_returns() -> None:
    """Issue 15 "send() means sent": nothing in the WebSocket path defers a write to a later loop turn."""

    async def main() -> None:
        written: list[bytes] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            written.append(transport.value())
            await send({"type": "websocket.send", "text": "now"})
            written.append(transport.value())
            await receive()

        _, leaf, channel, transport = serve(app, asyncio.get_running_loop())
        channel.dataReceived(UPGRADE)
        await settle(lambda: len(written) == 2)
        assert written[0].startswith(b"HTTP/1.1 101 ")
        client = Connection(ConnectionType.CLIENT)
        client.receive_data(written[1][len(written[0]) :])
        assert list(client.events()) == [TextMessage(data="now")]
        channel.connectionLost(Failure(ConnectionDone()))
        await settle(lambda: leaf.websockets.open == 0)

    asyncio.run(main())


def test_a_peer_that_does_not_read_our_pings_is_closed_even_while_we_do_not_read_it() -> None:
    """Reading paused because our replies cannot be written is the peer's slowness: 1011 on time.

    (Reading paused because the app is behind still postpones the keepalive verdict.)
    The keepalive timers run on the resource's Clock: advancing it fires them.
    """

    async def main() -> None:
        got: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await receive()
            await send({"type": "websocket.accept"})
            got.append(await receive())

        _, leaf, channel, transport = serve(app, asyncio.get_running_loop(), ping=0.01)
        channel.dataReceived(UPGRADE)
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 101 "))
        client = Connection(ConnectionType.CLIENT)
        session: Any = transport.producer
        session.pauseProducing()  # the peer reads nothing: our buffer is full
        channel.dataReceived(client.send(Ping(payload=b"flood")))
        assert transport.producerState == "paused"
        clock = cast(Clock, leaf.websockets.runner.clock)
        clock.advance(0.01)  # the ping goes out (into the full buffer)
        clock.advance(0.01)  # no pong in time
        await settle(lambda: bool(got))
        assert got == [{"type": "websocket.disconnect", "code": 1011, "reason": "keepalive ping timeout"}]
        assert transport.disconnecting
        channel.connectionLost(Failure(ConnectionDone()))
        await settle(lambda: leaf.websockets.open == 0)

    asyncio.run(main())
