"""Pin the Twisted internals the bridge relies on, so an upgrade that moves them fails here.

``StreamingRequest.gotLength`` reads the request line from HTTPChannel's
private ``_command``/``_path``/``_version``, and routes HTTP/2 requests when
the private ``H2Stream._convertHeaders`` calls ``parseCookies``; ``bridge.websocket`` takes
connections over with the private ``HTTPChannel._protocolUpgradeForWebsockets``.
These tests drive a real HTTPChannel over Twisted's StringTransport (no global
reactor).
"""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web._http2 import H2Connection, H2Stream
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from bridge._body import BodyPipe
from bridge.site import IStreamingBodyResource, StreamingSite, origin_form
from bridge.websocket import is_websocket_upgrade


@implementer(IStreamingBodyResource)
class RecordingLeaf(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[Any] = []
        self.chunks: list[bytes] = []
        self.ended = False

    def render(self, request: Any) -> Any:
        self.rendered.append((request.method, request.uri, request.prepath, request.postpath))
        assert isinstance(request.content, BodyPipe)
        request.content.attach(self)
        self.request = request
        return NOT_DONE_YET

    def body_chunk(self, data: bytes) -> None:
        self.chunks.append(data)

    def body_end(self) -> None:
        self.ended = True
        self.request.write(b"got %d" % sum(map(len, self.chunks)))
        self.request.finish()


class Buffered(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []

    def render_POST(self, request: Any) -> bytes:
        self.bodies.append(request.content.read())
        return b"ok"


def make_channel(root: Resource) -> tuple[Any, StringTransport]:
    site = StreamingSite(root, reactor=MemoryReactorClock())
    channel: Any = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def test_channel_exposes_request_line_before_body() -> None:
    """HTTPChannel keeps the request line in private attributes until the body ends."""
    root = Resource()
    leaf = RecordingLeaf()
    root.putChild(b"up", leaf)
    channel, _ = make_channel(root)
    channel.dataReceived(b"POST /up/x?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
    assert leaf.rendered == [(b"POST", b"/up/x?q=1", [b"up"], [b"x"])]
    assert leaf.chunks == [b"12345"]
    assert not leaf.ended


def test_streaming_leaf_gets_chunks_as_they_arrive_and_end() -> None:
    root = Resource()
    leaf = RecordingLeaf()
    root.putChild(b"up", leaf)
    channel, transport = make_channel(root)
    channel.dataReceived(b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert leaf.chunks == [b"abc"] and not leaf.ended
    channel.dataReceived(b"2\r\nde\r\n0\r\n\r\n")
    assert leaf.chunks == [b"abc", b"de"] and leaf.ended
    assert transport.value().endswith(b"got 5\r\n0\r\n\r\n")


def test_other_resources_render_after_body_without_second_traversal() -> None:
    root = Resource()
    buffered = Buffered()
    calls: list[bytes] = []
    original = root.getChildWithDefault

    def counting(name: bytes, request: Any) -> Any:
        calls.append(name)
        return original(name, request)

    root.getChildWithDefault = counting  # type: ignore[method-assign]
    root.putChild(b"b", buffered)
    channel, transport = make_channel(root)
    channel.dataReceived(b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nab")
    assert buffered.bodies == []
    channel.dataReceived(b"c")
    assert buffered.bodies == [b"abc"]
    assert calls == [b"b"]
    assert b"200 OK" in transport.value()


def test_pipelined_requests_after_streamed_one() -> None:
    root = Resource()
    leaf = RecordingLeaf()
    root.putChild(b"up", leaf)
    channel, transport = make_channel(root)
    channel.dataReceived(
        b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
        b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    )
    assert transport.value().count(b"HTTP/1.1 200 OK") == 2
    assert len(leaf.rendered) == 2


class HeaderRecordingLeaf(RecordingLeaf):
    """Also records the request headers as they are when the resource is rendered."""

    def render(self, request: Any) -> Any:
        self.headers = [
            (name.lower(), value) for name, values in request.requestHeaders.getAllRawHeaders() for value in values
        ]
        return super().render(request)


def test_http2_request_is_routed_once_every_header_is_in() -> None:
    """H2Stream._convertHeaders calls gotLength at content-length, mid-headers, and parseCookies last.

    h2 joins the cookie fields and puts them after the others; the resource must see them,
    and every header after content-length, when it is rendered (before the body).
    """
    root = Resource()
    leaf = HeaderRecordingLeaf()
    root.putChild(b"up", leaf)
    site = StreamingSite(root, reactor=MemoryReactorClock())
    connection: Any = H2Connection(reactor=MemoryReactorClock())
    connection.requestFactory, connection.site, connection.factory = site.requestFactory, site, site
    connection.makeConnection(StringTransport())
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", "h"), (":path", "/up/x")]
    client.send_headers(1, [*headers, ("cookie", "a=1"), ("content-length", "5"), ("content-type", "text/plain")])
    client.send_data(1, b"hel")
    connection.dataReceived(client.data_to_send())
    assert leaf.rendered == [(b"POST", b"/up/x", [b"up"], [b"x"])]
    assert sorted(leaf.headers) == [
        (b"content-length", b"5"),
        (b"content-type", b"text/plain"),
        (b"cookie", b"a=1"),
        (b"host", b"h"),
    ]
    assert leaf.chunks == [b"hel"] and not leaf.ended
    client.send_data(1, b"lo", end_stream=True)
    connection.dataReceived(client.data_to_send())
    assert leaf.chunks == [b"hel", b"lo"] and leaf.ended


# ---- the WebSocket upgrade hook (bridge.websocket) ---------------------------------


@implementer(IProtocol)
class RecordingWire:
    """Stands in for ``bridge.websocket.WebSocketSession`` after the upgrade."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.data: list[bytes] = []
        self.lost: list[Failure] = []

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        # What WebSocketSession does: replace the channel as the transport's producer.
        self.transport.unregisterProducer()
        self.transport.registerProducer(self, True)

    def dataReceived(self, data: bytes) -> None:
        self.data.append(data)

    def connectionLost(self, reason: Failure) -> None:
        self.lost.append(reason)


class Upgrading(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.wire = RecordingWire()
        self.upgradable: list[bool] = []

    def render_GET(self, request: Any) -> Any:
        self.upgradable.append(is_websocket_upgrade(request))
        request.channel._protocolUpgradeForWebsockets(self.wire)
        return NOT_DONE_YET


def test_protocol_upgrade_hook_hands_the_connection_over() -> None:
    """HTTPChannel._protocolUpgradeForWebsockets (private) routes the rest of the connection to our protocol."""
    root = Resource()
    leaf = Upgrading()
    root.putChild(b"ws", leaf)
    channel, transport = make_channel(root)
    assert transport.producer is not None  # the HTTP channel; the wire protocol must unregister it
    channel.dataReceived(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert leaf.upgradable == [True]
    assert leaf.wire.transport is transport
    assert transport.producer is leaf.wire
    channel.dataReceived(b"\x81\x80frame")  # the site's protocol object now feeds the wire protocol
    assert leaf.wire.data == [b"\x81\x80frame"]
    channel.connectionLost(Failure(ConnectionDone()))
    assert len(leaf.wire.lost) == 1
    assert transport.value() == b""  # nothing was written for the request


def test_http2_streams_have_no_upgrade_hook() -> None:
    """RFC 8441 WebSockets need a hook H2Stream lacks; when Twisted adds one, support it."""
    assert hasattr(HTTPChannel, "_protocolUpgradeForWebsockets")
    assert not hasattr(H2Stream, "_protocolUpgradeForWebsockets")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/p?q", b"/p?q"),
        (b"http://h/p?q", b"/p?q"),
        (b"HTTP://h:80/a/b", b"/a/b"),
        (b"http://h", b"/"),
        (b"http://h?x=1", b"/?x=1"),
        (b"ftp://h/p", b"ftp://h/p"),
        (b"*", b"*"),
    ],
)
def test_origin_form(target: bytes, expected: bytes) -> None:
    assert origin_form(target) == expected


def test_absolute_form_target_routes_like_origin_form() -> None:
    """RFC 9112 3.2.2: ``GET http://host/up/x`` reaches the resource at ``/up``."""
    root = Resource()
    leaf = RecordingLeaf()
    root.putChild(b"up", leaf)
    channel, _ = make_channel(root)
    channel.dataReceived(b"POST http://h/up/x?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\n")
    assert leaf.rendered == [(b"POST", b"/up/x?q=1", [b"up"], [b"x"])]
