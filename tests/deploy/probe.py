"""An ASGI app the nginx tests mount into each backend (``--mount /probe=tests.deploy.probe:app``).

- ``GET  /scope``: the scope's ``client``, ``scheme`` and ``server`` as JSON, i.e. what the
  bridge made of the proxy's X-Forwarded-* headers.
- ``GET  /gated?token=T``: a streaming response that sends ``first`` and then waits until
  ``POST /release?token=T`` before sending ``last``, so a test can tell a proxy that passes
  chunks on from one that buffers the response, without timing anything.
- ``POST /hold``: counts the request and never answers (a request in progress to kill a backend
  under); ``GET /count``: how many ``/hold`` requests this process received.
- ``/ws``: a WebSocket echo.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]

_gates: dict[str, asyncio.Event] = {}
_counts = {"holds": 0}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path = scope["path"][len(scope["root_path"]) :]
    if scope["type"] == "websocket":
        await _echo(receive, send)
        return
    query = parse_qs(scope["query_string"].decode())
    token = query.get("token", [""])[0]
    if path == "/scope":
        await _reply(send, {"client": scope["client"], "scheme": scope["scheme"], "server": scope["server"]})
    elif path == "/gated":
        await _gated(send, _gates.setdefault(token, asyncio.Event()))
    elif path == "/release":
        known = token in _gates
        if known:
            _gates[token].set()
        await _reply(send, {"released": known})
    elif path == "/hold":
        _counts["holds"] += 1
        await asyncio.Event().wait()
    elif path == "/count":
        await _reply(send, _counts)
    else:
        await _reply(send, {"error": "not found"}, status=404)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def _reply(send: Any, body: object, status: int = 200) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _gated(send: Any, gate: asyncio.Event) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    await gate.wait()
    await send({"type": "http.response.body", "body": b"last\n"})


async def _echo(receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        reply = {"type": "websocket.send"}
        if message.get("text") is not None:
            reply["text"] = message["text"]
        else:
            reply["bytes"] = message["bytes"]
        await send(reply)
