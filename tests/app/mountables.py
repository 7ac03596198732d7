"""Objects for ``--mount`` tests, imported by the server subprocess as ``tests.app.mountables``."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what it was told about the request; records lifespan startup in the state
    and prints a line on lifespan shutdown."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                print("mountables.asgi_app: lifespan shutdown", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps(
        {"path": scope["path"], "root_path": scope["root_path"], "started": scope["state"].get("started")}
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan startup fails: the server must not serve, and exit non-zero."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database today"})


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"hello from twisted at " + (request.path or b"")


resource = Hello()
not_an_app = 42


async def two_parameters(scope: dict[str, Any], receive: Any) -> None:
    """Async, but not ASGI 3 (no ``send``): refused."""
