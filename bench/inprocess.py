"""``python -m bench.inprocess``: the bridge's own cost per request, without sockets or load generators.

A ``StreamingSite`` channel is fed requests over Twisted's ``StringTransport`` on a plain asyncio
loop, one after another, so what is measured is the Python work of one request: Twisted's parsing
and ``Request``, plus (for the bridge) the scope, the app call, the ASGI messages and the task.
Each figure is the process CPU time per request (``time.process_time``, steadier than wall time
on a shared machine), the best of ``--rounds`` rounds. Memory is what ``tracemalloc`` sees
allocated and still held per request while ``--held`` requests wait for an answer that never
comes (the connection's objects included), the same for both sides.

These are the figures ``bench/PROFILE.md`` quotes for the per-request path; ``make bench``'s
W1 and W2 measure the same over real sockets, beside the peers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from bench.servers.apps import raw_app
from bench.servers.resources import Hello
from bridge import ASGIResource, StreamingSite, http_channel_class

#: The requests measured: wrk's three headers (the W1 load), and the twelve a browser sends.
REQUESTS = {
    "wrk": b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
    "browser": (
        b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n"
        b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
        b"Accept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n"
        b"Connection: keep-alive\r\nCookie: session=8f3a2c; theme=dark\r\nUpgrade-Insecure-Requests: 1\r\n"
        b"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: none\r\n"
        b"Priority: u=0, i\r\n\r\n"
    ),
}
REQUEST = REQUESTS["wrk"]


class Held(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> object:
        return NOT_DONE_YET


async def held_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await receive()  # http.disconnect, which never comes


def site_for(side: str, held: bool, parser: str, loop: asyncio.AbstractEventLoop) -> StreamingSite:
    # The same resource and app as the benchmark's W1 rows, served at the root.
    root: Any
    if side == "native":
        root = Held() if held else Hello()
    else:
        root = ASGIResource(held_app if held else raw_app, clock=Clock(), loop=loop)
    site = StreamingSite(root, reactor=MemoryReactorClock(), channel_class=http_channel_class(parser))
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log, as in the bench rows
    return site


async def turns(n: int = 2) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def cpu_per_request(side: str, parser: str, requests: int, rounds: int, request: bytes = REQUEST) -> float:
    site = site_for(side, False, parser, asyncio.get_running_loop())
    channel: Any = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)

    async def run(n: int) -> None:
        for _ in range(n):
            channel.dataReceived(request)
            await turns()
            transport.clear()

    await run(1000)  # warm up
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        await run(requests)
        best = min(best, (time.process_time() - started) / requests)
    return best


async def bytes_per_held_request(side: str, parser: str, held: int, request: bytes = REQUEST) -> float:
    site = site_for(side, True, parser, asyncio.get_running_loop())
    keep: list[tuple[Any, StringTransport]] = []

    def open_one() -> None:
        channel: Any = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(request)
        keep.append((channel, transport))

    for _ in range(100):
        open_one()
    await turns(5)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(held):
        open_one()
    await turns(5)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--held", type=int, default=2_000)
    parser.add_argument("--http", default="twisted", choices=["twisted", "httptools"])
    parser.add_argument("--request", default="wrk", choices=sorted(REQUESTS), help="the request's headers")
    args = parser.parse_args()
    run: Callable[[Any], Any] = asyncio.run
    request = REQUESTS[args.request]
    sides = ("native", "bridge")
    cpu = {side: run(cpu_per_request(side, args.http, args.requests, args.rounds, request)) for side in sides}
    held = {side: run(bytes_per_held_request(side, args.http, args.held, request)) for side in sides}
    print(f"HTTP/1.1 parser: {args.http}; {args.request}'s headers; CPU best of {args.rounds} x {args.requests}")
    print("| side | CPU us per request | bytes per held request |")
    print("|---|---|---|")
    for side in sides:
        print(f"| {side} | {cpu[side] * 1e6:.1f} | {held[side]:,.0f} |")
    print(
        f"| bridge / native | {cpu['bridge'] / cpu['native']:.2f}x | "
        f"+{held['bridge'] - held['native']:,.0f} bytes |"
    )


if __name__ == "__main__":
    main()
