"""Ill-behaved apps for test_request_path, on a StreamingSite.  Prints LISTENING <port>.

Arguments: the HTTP/1.1 parser (``twisted`` or ``httptools``) and the site's
idle timeout in seconds (Twisted's inactivity timeout, which also bounds a
stalled request body and then answers 408).

Each app records what it saw in ``seen``; ``/control/seen?key`` reads it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from bridge import install_reactor

install_reactor()

from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from bridge import ASGIResource, StreamingSite, http_channel_class  # noqa: E402
from bridge.types import Receive, Scope, Send  # noqa: E402

seen: dict[str, Any] = {}
#: Bounds the ill-behaved loops below, so that a failing server still ends them.
SPIN_LIMIT = 3_000_000
CRUNCH_LIMIT = 10.0


async def answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def crunch(marker: str) -> None:
    """Computes without awaiting until the client's marker file appears (the response reached it)."""
    end = time.monotonic() + CRUNCH_LIMIT
    while time.monotonic() < end:
        if os.path.exists(marker):  # noqa: ASYNC240 -- blocking on purpose: it stands for CPU work
            seen["crunch"] = "client had the response while the task computed"
            return
    seen["crunch"] = "the response was still held when the task ended"


async def background(request: Request) -> PlainTextResponse:
    return PlainTextResponse("done", background=BackgroundTask(crunch, request.query_params["marker"]))


async def spin(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers, then calls receive() in a loop without looking at what it gets."""
    seen.pop("spin", None)
    await answer(send, 200, b"spinning")
    for _ in range(SPIN_LIMIT):
        await receive()
        if "pinged" in seen:
            seen["spin"] = "another client was served while this app spun"
            return
    seen["spin"] = "nobody else was served while this app spun"


async def ping(scope: Scope, receive: Receive, send: Send) -> None:
    seen["pinged"] = True
    await answer(send, 200, b"pong")


async def early(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 405 without reading the request body."""
    await answer(send, 405, b"method not allowed")


async def reads_then_answers(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads until the body ends or the client is gone, then answers anyway."""
    message = await receive()
    while message.get("more_body"):
        message = await receive()
    seen["after-stall"] = message["type"]
    try:
        await answer(send, 200, b"late answer")
    except OSError as e:
        seen["after-stall-send"] = type(e).__name__


async def sink(scope: Scope, receive: Receive, send: Send) -> None:
    """Never reads its body and never answers: the upload must stall, not pile up."""
    seen["sinks"] = seen.get("sinks", 0) + 1
    await asyncio.Event().wait()


async def pathsend_timeout(scope: Scope, receive: Receive, send: Send) -> None:
    """Sends a large file with pathsend under a timeout the slow client makes it miss."""
    path = scope["query_string"].decode()
    size = os.path.getsize(path)  # noqa: ASYNC240 -- a local file the test made; one stat
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
    try:
        await asyncio.wait_for(send({"type": "http.response.pathsend", "path": path}), 0.5)
    except TimeoutError:
        seen["pathsend"] = "timed out"


async def control(scope: Scope, receive: Receive, send: Send) -> None:
    key = scope["query_string"].decode()
    await answer(send, 200, str(seen.get(key, "")).encode())


globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
root = Resource()
root.putChild(b"bg", ASGIResource(Starlette(routes=[Route("/", background)])))
root.putChild(b"spin", ASGIResource(spin))
root.putChild(b"ping", ASGIResource(ping))
root.putChild(b"early", ASGIResource(early, max_body_size=1000))
root.putChild(b"stall", ASGIResource(reads_then_answers))
root.putChild(b"sink", ASGIResource(sink))
root.putChild(b"pathsend", ASGIResource(pathsend_timeout))
root.putChild(b"control", ASGIResource(control))


def announce(port: object) -> None:
    print(f"LISTENING {port.getHost().port}", flush=True)  # type: ignore[attr-defined]


parser, idle_timeout = sys.argv[1], float(sys.argv[2])
site = StreamingSite(root, idle_timeout=idle_timeout, max_header_bytes=4096, channel_class=http_channel_class(parser))
endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site).addCallback(announce)
reactor.run()
