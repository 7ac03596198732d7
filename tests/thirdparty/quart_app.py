"""A Quart app (Quart's usual server is Hypercorn): lifespan, routes, ``url_for``, streaming, WebSockets.

``before_serving`` and ``after_serving`` run in the ASGI lifespan; the second one prints a line
the shutdown test looks for, since the process is gone by the time anyone could ask it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

from quart import Quart, Response, redirect, request, url_for, websocket
from quart.typing import ResponseReturnValue

app = Quart(__name__)
#: How long a gated stream waits for its release before giving up (bounds a failing test).
GATE_TIMEOUT = 10.0
AFTER_SERVING = "quart: after_serving ran"
#: When set in the environment, startup fails with its value as the message.
FAIL_STARTUP = "QUART_APP_FAIL_STARTUP"

_gates: dict[str, asyncio.Event] = {}


@app.before_serving
async def startup() -> None:
    if os.environ.get(FAIL_STARTUP):
        raise RuntimeError(os.environ[FAIL_STARTUP])
    app.config["STARTED_BY"] = "before_serving"


@app.after_serving
async def shutdown() -> None:
    print(AFTER_SERVING, flush=True)


@app.get("/")
async def index() -> dict[str, Any]:
    """Where Quart thinks it is mounted, the URLs it builds, and what startup left behind."""
    return {
        "root_path": request.root_path,
        "path": request.path,
        "url_for_item": url_for("item", item_id=7),
        "url_for_item_external": url_for("item", item_id=7, _external=True),
        "started_by": app.config.get("STARTED_BY"),
    }


@app.get("/items/<int:item_id>")
async def item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "q": request.args.getlist("q")}


@app.post("/json")
async def echo_json() -> dict[str, Any]:
    return {"got": await request.get_json()}


@app.get("/go")
async def go() -> ResponseReturnValue:
    return redirect(url_for("item", item_id=3))


@app.get("/stream/<token>")
async def stream(token: str) -> Response:
    """One chunk, then a second only once ``/release/<token>`` was requested (or the gate timed out)."""
    gate = _gates.setdefault(token, asyncio.Event())

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first\n"
        try:
            await asyncio.wait_for(gate.wait(), GATE_TIMEOUT)
        except TimeoutError:
            yield b"timed out\n"
        else:
            yield b"released\n"

    return Response(chunks(), mimetype="text/plain")


@app.get("/release/<token>")
async def release(token: str) -> str:
    _gates.setdefault(token, asyncio.Event()).set()
    return "released"


@app.websocket("/ws/<name>")
async def chat(name: str) -> None:
    """Accepts (with a header, and the ``chat`` subprotocol if offered), says where it is, then echoes until "bye".

    A binary message is answered with its SHA-256 digest, so large ones need not come back whole.
    """
    subprotocol = "chat" if "chat" in websocket.requested_subprotocols else None
    await websocket.accept(headers={"x-chat-room": name}, subprotocol=subprotocol)
    await websocket.send_json({"path": websocket.path, "url_for_index": url_for("index")})
    while (message := await websocket.receive()) != "bye":
        if isinstance(message, bytes):
            await websocket.send(hashlib.sha256(message).digest())
        else:
            await websocket.send(f"{name}: {message}")
    await websocket.close(4000, "bye yourself")
