"""A finished request leaves nothing for the garbage collector.

When an app call's objects form a reference cycle, each finished request
stays in memory until the collector runs, and the collector then walks every
live object, the held requests' included: that was most of the bridge's cost
with 5,000 requests held (bench/PROFILE.md).  Without cycles, reference
counting frees a request the moment its last reference goes.  Driven in
process with the collector off, then asked what it would have had to find.
What still leaves cycles, for the collector to free: per connection, a
channel and the WebSocket protocol it hands its data to (as in Twisted's own
WebSocket support), and llhttp's parser and its callbacks; per request, only
the unusual endings: an app that raised (its traceback holds its frames) and
a request whose client left first (Twisted's request and channel keep their
producer, the responder).
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from bridge import http_channel_class
from bridge.resource import ASGIResource
from bridge.site import StreamingSite
from tests.bridge.loop_turns import settle

PARSERS = ["twisted", "httptools"]


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = b""
    while (message := await receive())["type"] == "http.request":
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse((await request.body()).decode())


starlette_app = Starlette(routes=[Route("/", echo, methods=["GET", "POST"])])


def bridge_garbage(drive: Callable[[Any, StringTransport], Awaitable[None]], app: Any, parser: str) -> Counter[str]:
    """The bridge's objects the collector would have had to free after ``drive`` ran."""

    async def main() -> Counter[str]:
        resource = ASGIResource(app, clock=Clock(), loop=asyncio.get_running_loop())
        site = StreamingSite(resource, reactor=MemoryReactorClock(), channel_class=http_channel_class(parser))
        channel: Any = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        gc.collect()
        gc.disable()
        try:
            await drive(channel, transport)
            await settle(lambda: resource.in_flight == 0)
            channel.connectionLost(Failure(ConnectionDone()))
            if transport.producer is not None:
                transport.unregisterProducer()  # as a closed TCP transport lets go of its producer
            del channel, transport  # what is left of the connection is garbage now, cyclic or not
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            return Counter(type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("bridge."))
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()

    return asyncio.run(main())


async def requests(channel: Any, transport: StringTransport) -> None:
    """Twenty requests on one keep-alive connection, every other one with a body to echo."""
    for n in range(20):
        transport.clear()
        body = b"hello" if n % 2 else b""
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        answer = b"\r\n\r\n" + body
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 200 ") and transport.value().endswith(answer))  # noqa: B023


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("app", [raw_app, starlette_app], ids=["raw", "starlette"])
def test_finished_requests_leave_no_cycles(app: Any, parser: str) -> None:
    assert bridge_garbage(requests, app, parser) == Counter()
