"""The HTTP glue driven in process: a real StreamingSite channel over StringTransport, timers on a Clock.

Nothing here needs the global reactor or waits on a wall clock: the app runs on a plain asyncio
loop, Twisted's objects are fed by hand, and ``Clock.advance`` moves the response timeout and
the disconnect grace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from bridge._http_responder import BODY_HIGH_WATER
from bridge.resource import ASGIResource
from bridge.site import StreamingSite
from tests.bridge.loop_turns import settle, turns

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def serve(
    app: App, clock: Clock, transport: StringTransport | None = None, **options: Any
) -> tuple[ASGIResource, Any, StringTransport]:
    resource = ASGIResource(app, clock=clock, loop=asyncio.get_running_loop(), **options)
    root = Resource()
    root.putChild(b"a", resource)
    channel: Any = StreamingSite(root, reactor=MemoryReactorClock()).buildProtocol(None)
    transport = transport or StringTransport()
    channel.makeConnection(transport)
    return resource, channel, transport


def test_an_app_that_never_answers_gets_504_when_the_clock_passes_the_response_timeout() -> None:
    async def main() -> None:
        started, cancelled = asyncio.Event(), asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        clock = Clock()
        resource, channel, transport = serve(app, clock, response_timeout=5.0)
        channel.dataReceived(b"GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(started.is_set)
        clock.advance(4.9)
        clock.advance(0)
        assert transport.value() == b""
        clock.advance(0.1)
        clock.advance(0)  # the answer is written on the next turn, never from inside the parser
        await settle(cancelled.is_set)
        assert transport.value().startswith(b"HTTP/1.1 504 ")
        await settle(lambda: resource.in_flight == 0)

    asyncio.run(main())


def test_an_app_ignoring_a_disconnect_is_cancelled_when_the_grace_period_ends() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append((await receive())["type"])
            seen.append((await receive())["type"])
            await asyncio.Event().wait()

        clock = Clock()
        resource, channel, _ = serve(app, clock, disconnect_grace=3.0)
        channel.dataReceived(b"GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(lambda: len(seen) == 1)
        channel.connectionLost(Failure(ConnectionDone()))
        await settle(lambda: len(seen) == 2)
        assert seen == ["http.request", "http.disconnect"]
        clock.advance(2.9)
        await turns()  # enough for a cancelled app to finish
        assert resource.in_flight == 1
        clock.advance(0.1)
        await settle(lambda: resource.in_flight == 0)
        assert resource.abandoned == 1

    asyncio.run(main())


def test_a_request_the_channel_answered_itself_is_not_counted_as_abandoned() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append((await receive())["type"])
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"too late"})

        resource, channel, transport = serve(app, Clock())
        channel.dataReceived(b"POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        await settle(lambda: resource.in_flight == 0)
        assert seen == ["http.disconnect"]
        assert transport.value().count(b"HTTP/1.1 ") == 1
        assert transport.value().startswith(b"HTTP/1.1 400 ")
        assert resource.abandoned == 0

    asyncio.run(main())


def test_reading_pauses_over_the_high_water_mark_of_tiny_chunks_and_resumes_when_the_app_reads() -> None:
    async def main() -> None:
        may_read = asyncio.Event()
        received = bytearray()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await may_read.wait()
            while True:
                message = await receive()
                received.extend(message["body"])
                if not message["more_body"]:
                    break
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"%d" % len(received)})

        resource, channel, transport = serve(app, Clock())
        channel.dataReceived(b"POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while transport.producerState == "producing":
            channel.dataReceived(b"2\r\nab\r\n" * 1024)
            sent += 2048
        assert BODY_HIGH_WATER < sent <= BODY_HIGH_WATER + 2048
        may_read.set()
        await settle(lambda: transport.producerState == "producing")
        channel.dataReceived(b"0\r\n\r\n")
        await settle(lambda: resource.in_flight == 0)
        assert bytes(received) == b"ab" * (sent // 2)
        assert transport.value().endswith(b"%d" % sent)

    asyncio.run(main())


class CountingTransport(StringTransport):
    """Counts the transport writes: each one is a send() on a real socket."""

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)

    def writeSequence(self, data: Any) -> None:
        self.writes += 1
        super().writeSequence(data)


def test_the_response_head_and_its_first_body_chunk_leave_in_one_write() -> None:
    async def main() -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
            await send({"type": "http.response.body", "body": b"hello"})

        transport = CountingTransport()
        resource, channel, _ = serve(app, Clock(), transport)
        channel.dataReceived(b"GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(lambda: resource.in_flight == 0)
        assert transport.value().startswith(b"HTTP/1.1 200 ") and transport.value().endswith(b"\r\n\r\nhello")
        assert transport.writes == 1

    asyncio.run(main())


def test_a_malformed_chunk_after_the_response_started_closes_without_a_second_response() -> None:
    async def main() -> None:
        seen: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            seen.append((await receive())["type"])

        resource, channel, transport = serve(app, Clock())
        channel.dataReceived(b"POST /a/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        await settle(lambda: b"partial" in transport.value())
        channel.dataReceived(b"zz\r\n")
        await settle(lambda: resource.in_flight == 0)
        assert transport.value().count(b"HTTP/1.1 ") == 1
        assert transport.disconnecting
        assert seen == ["http.disconnect"]
        assert resource.abandoned == 0

    asyncio.run(main())


def test_a_client_that_left_gets_the_grace_period_not_the_response_timeout() -> None:
    async def main() -> None:
        cancelled = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        clock = Clock()
        resource, channel, transport = serve(app, clock, response_timeout=2.0, disconnect_grace=30.0)
        channel.dataReceived(b"GET /a/x HTTP/1.1\r\nHost: h\r\n\r\n")
        await settle(lambda: resource.in_flight == 1)
        channel.connectionLost(Failure(ConnectionDone()))
        clock.advance(2.0)
        clock.advance(0)
        await turns()
        assert not cancelled.is_set() and transport.value() == b""
        clock.advance(28.0)
        await settle(cancelled.is_set)
        await settle(lambda: resource.in_flight == 0)

    asyncio.run(main())
