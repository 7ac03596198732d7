"""What ``HttpToolsChannel`` does beyond reading requests like Twisted's parser (see test_h1_differential).

In-process: a ``StreamingSite`` on the llhttp channel over a ``StringTransport``.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from bridge import IStreamingBodyResource, StreamingSite, http_channel_class
from bridge._fast_channel import HttpToolsChannel
from tests.bridge.h1_pair import STATUS


@implementer(IStreamingBodyResource)
class Streaming(Resource):
    """Rendered at the headers, like an ASGI app; answers only when told."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self.finished: list[object] = []

    def render(self, request: Request) -> object:
        self.requests.append(request)
        request.notifyFinish().addBoth(self.finished.append)
        return NOT_DONE_YET


class Upgrading(Resource):
    """Takes the connection over from ``render``, as twisted.web.websocket does."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.received: list[bytes] = []

    def render(self, request: Request) -> object:
        received = self.received

        class Raw(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        request.channel._protocolUpgradeForWebsockets(Raw())
        return NOT_DONE_YET


def connect(resource: Resource) -> tuple[Protocol, StringTransport]:
    clock = Clock()
    site = StreamingSite(resource, channel_class=HttpToolsChannel, reactor=clock)
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    assert protocol is not None
    protocol._channel.callLater = clock.callLater  # type: ignore[attr-defined]
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_http_channel_class_names_the_parsers() -> None:
    assert http_channel_class("httptools") is HttpToolsChannel
    assert http_channel_class("twisted").__name__ == "GuardedHTTPChannel"


def test_refusal_mid_body_is_the_only_response_and_the_resource_is_told() -> None:
    """A malformed chunk after the resource started: one 400, and the resource's writes go nowhere."""
    resource = Streaming()
    protocol, transport = connect(resource)
    protocol.dataReceived(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    [request] = resource.requests
    assert transport.value() == b""
    protocol.dataReceived(b"zz\r\n")
    assert [int(m.group(1)) for m in STATUS.finditer(transport.value())] == [400]
    [reason] = resource.finished
    assert isinstance(reason, Failure)
    sent = transport.value()
    request.setResponseCode(405)
    request.write(b"too late")
    assert transport.value() == sent
    assert transport.disconnecting
    protocol.connectionLost(Failure(ConnectionError()))


def test_bytes_after_an_upgrade_request_reach_the_new_protocol() -> None:
    resource = Upgrading()
    protocol, _ = connect(resource)
    head = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    protocol.dataReceived(head + b"first frame")
    protocol.dataReceived(b"second")
    assert resource.received == [b"first frame", b"second"]


def test_pipelined_requests_wait_for_the_one_before() -> None:
    """Head-of-line blocking as in HTTPChannel: the second request reaches the resource only after the first."""
    resource = Streaming()
    protocol, transport = connect(resource)
    protocol.dataReceived(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert [r.uri for r in resource.requests] == [b"/1"]
    first = resource.requests[0]
    first.write(b"one")
    first.finish()
    assert [r.uri for r in resource.requests] == [b"/1", b"/2"]
    resource.requests[1].finish()
    assert [int(m.group(1)) for m in STATUS.finditer(transport.value())] == [200, 200]
    protocol.connectionLost(Failure(ConnectionError()))


def test_stalled_body_timeout_is_the_only_response_and_the_resource_is_told() -> None:
    """The idle timeout on a stalled upload (what its timer calls): one 408, then the resource's writes go nowhere."""
    resource = Streaming()
    protocol, transport = connect(resource)
    protocol.dataReceived(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    [request] = resource.requests
    protocol._channel.timeoutConnection()  # type: ignore[attr-defined]
    assert [int(m.group(1)) for m in STATUS.finditer(transport.value())] == [408]
    assert len(resource.finished) == 1
    sent = transport.value()
    request.write(b"too late")
    assert transport.value() == sent
    protocol.connectionLost(Failure(ConnectionError()))
