"""The two ASGI apps every ASGI server runs: a raw ASGI callable and its Starlette twin.

Both answer the same URLs with the same bytes, so a difference between two rows of a table is
the server's (or the framework's), never the app's:

- ``GET /hello``: 12 bytes of text (W1).
- ``GET /delayed?delay=S``: the Twisted tutorial's delayed page after S seconds (W2).
- ``GET /download?size=N&chunk=C``: N bytes in C-byte body messages, Content-Length set (W3).
- ``POST /upload``: counts the body as it arrives; answers JSON with the byte count and the
  wall-clock time the first body chunk reached the app, so the client can tell buffering (W4).
- ``/ws``: WebSocket echo (W5).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

HELLO = b"Hello world!"
DELAYED_BODY = b"<html><body>Sorry to keep you waiting.</body></html>"
DEFAULT_CHUNK = 65536

Scope = dict[str, Any]
Message = dict[str, Any]


def query_number(query_string: bytes, name: str, default: float) -> float:
    """One numeric query parameter; the harness only sends well-formed ones."""
    values = parse_qs(query_string.decode("latin-1")).get(name)
    return float(values[0]) if values else default


def upload_report(received: int, first_chunk_at: float | None, called_at: float) -> bytes:
    """The JSON the upload endpoint answers on every server (native Twisted included)."""
    return json.dumps({"bytes": received, "first_chunk_at": first_chunk_at, "called_at": called_at}).encode()


def _text_headers(length: int, content_type: bytes = b"text/plain") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", str(length).encode())]


async def _respond(send: Any, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _text_headers(len(body), content_type)})
    await send({"type": "http.response.body", "body": body})


async def _raw_download(scope: Scope, send: Any) -> None:
    size = int(query_number(scope["query_string"], "size", 0))
    chunk_size = int(query_number(scope["query_string"], "chunk", DEFAULT_CHUNK))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": _text_headers(size, b"application/octet-stream"),
        }
    )
    chunk = b"x" * chunk_size
    remaining = size
    while remaining > chunk_size:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
        remaining -= chunk_size
    await send({"type": "http.response.body", "body": chunk[:remaining]})


async def _raw_upload(receive: Any, send: Any) -> None:
    called_at = time.time()
    first_chunk_at = None
    received = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body") and first_chunk_at is None:
            first_chunk_at = time.time()
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await _respond(send, upload_report(received, first_chunk_at, called_at), b"application/json")


async def _raw_websocket(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


async def _raw_lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def raw_app(scope: Scope, receive: Any, send: Any) -> None:
    """The endpoints above as a bare ASGI 3 callable: the server's cost with no framework."""
    if scope["type"] == "lifespan":
        await _raw_lifespan(receive, send)
    elif scope["type"] == "websocket":
        await _raw_websocket(receive, send)
    elif scope["path"] == "/hello":
        await _respond(send, HELLO)
    elif scope["path"] == "/delayed":
        await asyncio.sleep(query_number(scope["query_string"], "delay", 5.0))
        await _respond(send, DELAYED_BODY, b"text/html")
    elif scope["path"] == "/download":
        await _raw_download(scope, send)
    elif scope["path"] == "/upload":
        await _raw_upload(receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": _text_headers(0)})
        await send({"type": "http.response.body", "body": b""})


async def hello(request: Request) -> Response:
    return PlainTextResponse(HELLO)


async def delayed(request: Request) -> Response:
    await anyio.sleep(float(request.query_params.get("delay", "5")))
    return Response(DELAYED_BODY, media_type="text/html")


async def download(request: Request) -> Response:
    size = int(request.query_params.get("size", "0"))
    chunk_size = int(request.query_params.get("chunk", str(DEFAULT_CHUNK)))

    async def chunks() -> AsyncIterator[bytes]:
        chunk = b"x" * chunk_size
        remaining = size
        while remaining > chunk_size:
            yield chunk
            remaining -= chunk_size
        yield chunk[:remaining]

    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"content-length": str(size)})


async def upload(request: Request) -> Response:
    called_at = time.time()
    first_chunk_at = None
    received = 0
    async for chunk in request.stream():
        if chunk and first_chunk_at is None:
            first_chunk_at = time.time()
        received += len(chunk)
    return Response(upload_report(received, first_chunk_at, called_at), media_type="application/json")


#: W6: how long the background task computes before its first await.
CRUNCH_SECONDS = 1.0


async def crunch() -> None:
    """Computes for ``CRUNCH_SECONDS`` without awaiting: it holds the loop, as CPU-bound code does."""
    end = time.monotonic() + CRUNCH_SECONDS
    while time.monotonic() < end:
        pass


async def background(request: Request) -> Response:
    return PlainTextResponse("done", background=BackgroundTask(crunch))


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        return


starlette_app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/delayed", delayed),
        Route("/download", download),
        Route("/upload", upload, methods=["POST"]),
        Route("/background", background),
        WebSocketRoute("/ws", echo),
    ]
)
