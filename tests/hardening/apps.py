"""Mount targets for the hardening tests: one ASGI app and one Twisted tree that misbehave on request.

Served by a real ``hybrid serve`` with ``--mount /a=tests.hardening.apps:asgi_app`` and
``--mount /n=tests.hardening.apps:native``; the paths below are the same on both sides:

``/echo``           what the server made of the request (JSON: path, raw_path, body length);
                    any path below it too
``/hold``           held until the server process gets SIGUSR1 (the tests' only way to release
                    requests while the listener is closed), then ``released``
``/held``           how many requests ``/hold`` holds right now, on both sides (JSON: asgi, native),
                    so a test can ask one mount while the other is saturated
``/raise``          raises before answering (the message must not reach the client)
``/inject``         sets a header value carrying CR LF and a second header
``/download``       ``?size=N`` bytes in 64 KiB writes, with flow control
``/hang``           (ASGI only) never answers: the response timeout's case

The ASGI app's lifespan prints one line at shutdown, so a test can tell it ran. Separate apps
whose lifespan never completes (``stuck_startup``, ``stuck_shutdown``) test the lifespan
timeouts.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from twisted.internet.interfaces import IPullProducer
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

#: What an internal error says; a test asserts it never reaches a client.
SECRET = "internal-detail-that-must-stay-in-the-log"
CHUNK = 64 * 1024

_released = asyncio.Event()
_held_native: list[Request] = []
_held_asgi = 0


def _release() -> None:
    _released.set()
    while _held_native:
        request = _held_native.pop()
        if not request.finished:
            request.setHeader(b"content-length", b"8")
            request.write(b"released")
            request.finish()


def _install_release_signal() -> None:
    loop = asyncio.get_running_loop()
    # A plain handler, not loop.add_signal_handler: the reactor owns the loop's wakeup fd.
    signal.signal(signal.SIGUSR1, lambda *_: loop.call_soon_threadsafe(_release))


# -- the ASGI side --------------------------------------------------------------------------


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, stuck_in=None)
        return
    route = scope["path"][len(scope["root_path"]) :]
    if route.startswith("/echo"):
        body = await _read_body(receive)
        await _answer(send, 200, json.dumps(_echo(scope, len(body))).encode(), b"application/json")
    elif route == "/hold":
        await _hold()
        await _answer(send, 200, b"released")
    elif route == "/held":
        await _answer(send, 200, _held_counts(), b"application/json")
    elif route == "/hang":
        await asyncio.Event().wait()
    elif route == "/raise":
        raise RuntimeError(SECRET)
    elif route == "/inject":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-test", b"ok\r\nX-Injected: yes")]})
        await send({"type": "http.response.body", "body": b"injected"})
    elif route == "/download":
        await _download(scope, send)
    else:
        await _answer(send, 404, b"no such route")


async def _hold() -> None:
    global _held_asgi
    _held_asgi += 1
    try:
        await _released.wait()
    finally:
        _held_asgi -= 1


def _held_counts() -> bytes:
    return json.dumps({"asgi": _held_asgi, "native": len(_held_native)}).encode()


def _echo(scope: dict[str, Any], body_length: int) -> dict[str, Any]:
    return {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "body_length": body_length,
    }


async def _read_body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _download(scope: dict[str, Any], send: Any) -> None:
    size = int(scope["query_string"].partition(b"=")[2] or b"0")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
    block = b"x" * CHUNK
    while size > 0:
        part = block[: min(size, CHUNK)]
        size -= len(part)
        await send({"type": "http.response.body", "body": part, "more_body": size > 0})


async def _lifespan(receive: Any, send: Any, stuck_in: str | None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if stuck_in == "startup":
                await asyncio.Event().wait()
            _install_release_signal()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if stuck_in == "shutdown":
                await asyncio.Event().wait()
            print("hardening app: lifespan shutdown complete", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def stuck_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan startup never completes."""
    await _lifespan(receive, send, stuck_in="startup")


async def stuck_shutdown(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan shutdown never completes."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send, stuck_in="shutdown")
    else:
        await _answer(send, 200, b"ok")


# -- the native side ------------------------------------------------------------------------


class _Echo(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        assert request.content is not None and request.method is not None and request.uri is not None
        body = request.content.read()
        raw_path = request.uri.partition(b"?")[0]
        request.setHeader(b"content-type", b"application/json")
        echo = {"method": request.method.decode(), "raw_path": raw_path.decode("latin-1"), "body_length": len(body)}
        return json.dumps(echo).encode()


class _Hold(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes | int:
        if _released.is_set():
            return b"released"
        _held_native.append(request)
        request.notifyFinish().addErrback(lambda _: _held_native.remove(request) if request in _held_native else None)
        return NOT_DONE_YET


class _Held(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return _held_counts()


class _Raise(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        raise RuntimeError(SECRET)


class _Inject(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"x-test", b"ok\r\nX-Injected: yes")
        return b"injected"


@implementer(IPullProducer)
class _Blocks:
    """Writes ``size`` bytes, one block each time the transport asks for more."""

    def __init__(self, request: Request, size: int) -> None:
        self._request = request
        self._left = size

    def resumeProducing(self) -> None:
        part = b"x" * min(self._left, CHUNK)
        self._left -= len(part)
        self._request.write(part)
        if not self._left:
            self._request.unregisterProducer()
            self._request.finish()

    def stopProducing(self) -> None:
        self._left = 0


class _Download(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> int:
        assert request.args is not None
        size = int(request.args.get(b"size", [b"0"])[0])
        request.setHeader(b"content-length", b"%d" % size)
        request.registerProducer(_Blocks(request, size), False)
        return NOT_DONE_YET


native = Resource()
for _name, _child in [
    (b"echo", _Echo()),
    (b"hold", _Hold()),
    (b"held", _Held()),
    (b"raise", _Raise()),
    (b"inject", _Inject()),
    (b"download", _Download()),
]:
    native.putChild(_name, _child)
