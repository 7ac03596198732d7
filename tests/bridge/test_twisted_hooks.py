"""Pin the Twisted internals the bridge relies on, so an upgrade that moves them fails here.

``StreamingRequest.gotLength`` reads the request line from HTTPChannel's
private ``_command``/``_path``/``_version``; these tests drive a real
HTTPChannel over Twisted's StringTransport (no global reactor).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from bridge._body import BodyPipe
from bridge.site import IStreamingBodyResource, StreamingSite


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
    channel = site.buildProtocol(None)
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
