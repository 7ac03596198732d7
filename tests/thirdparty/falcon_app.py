"""A Falcon ASGI app: path templates, media, a redirect, a streamed body, a WebSocket, lifespan state.

Falcon routes on ``scope["path"]`` as it is, and builds ``req.relative_uri`` as ``root_path +
path``. Under ASGI 2.5 ``path`` already includes ``root_path`` (on Hypercorn with
``--root-path`` as on the bridge; see asgiref#229), so at a sub-path Falcon alone 404s every
route and would double the prefix in its URIs. ``StripRootPath`` is the usual remedy, from
Falcon's own hooks: ``process_request`` runs before routing and may set ``req.path``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import falcon
import falcon.asgi
from falcon.asgi import Request, Response, WebSocket
from falcon.errors import WebSocketDisconnected

#: How long a gated stream waits for its release before giving up (bounds a failing test).
GATE_TIMEOUT = 10.0
CHUNK = 64 * 1024


class StartupState:
    """Lifespan middleware: leaves a value in the lifespan ``state``, which servers copy into every scope."""

    async def process_startup(self, scope: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        scope["state"]["started_by"] = "process_startup"


class StripRootPath:
    """Routes on the path below the mount point, as WSGI's ``PATH_INFO`` would be."""

    async def process_request(self, req: Request, resp: Response) -> None:
        self._strip(req)

    async def process_request_ws(self, req: Request, ws: WebSocket) -> None:
        self._strip(req)

    @staticmethod
    def _strip(req: Request) -> None:
        if req.root_path and req.path.startswith(req.root_path):
            req.path = req.path.removeprefix(req.root_path) or "/"


class Where:
    async def on_get(self, req: Request, resp: Response) -> None:
        resp.media = {
            "scope_path": req.scope["path"],
            "root_path": req.root_path,
            "path": req.path,
            "uri": req.uri,
            "started_by": req.scope["state"]["started_by"],
        }


class Item:
    async def on_get(self, req: Request, resp: Response, item_id: int) -> None:
        resp.media = {"id": item_id, "q": req.get_param_as_list("q") or []}

    async def on_post(self, req: Request, resp: Response, item_id: int) -> None:
        resp.media = {"id": item_id, "got": await req.get_media()}
        resp.status = falcon.HTTP_201


class Upload:
    """Hashes the request body as Falcon's stream yields it, without holding it."""

    async def on_post(self, req: Request, resp: Response) -> None:
        digest, size = hashlib.sha256(), 0
        while chunk := await req.stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        resp.media = {"size": size, "sha256": digest.hexdigest()}


class Go:
    async def on_get(self, req: Request, resp: Response) -> None:
        raise falcon.HTTPSeeOther(f"{req.root_path}/items/3")


class Stream:
    """One chunk, then a second only once ``/release/{token}`` was requested (or the gate timed out)."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, token: str) -> asyncio.Event:
        return self.gates.setdefault(token, asyncio.Event())

    async def on_get(self, req: Request, resp: Response, token: str) -> None:
        gate = self.gate(token)

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first\n"
            try:
                await asyncio.wait_for(gate.wait(), GATE_TIMEOUT)
            except TimeoutError:
                yield b"timed out\n"
            else:
                yield b"released\n"

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = chunks()

    async def on_get_release(self, req: Request, resp: Response, token: str) -> None:
        self.gate(token).set()
        resp.text = "released"


class Shout:
    """A WebSocket that answers each text message in capitals until the client leaves."""

    async def on_websocket(self, req: Request, ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                await ws.send_text((await ws.receive_text()).upper())
        except WebSocketDisconnected:
            pass


app = falcon.asgi.App(middleware=(StartupState(), StripRootPath()))
stream = Stream()
app.add_route("/where", Where())
app.add_route("/items/{item_id:int}", Item())
app.add_route("/upload", Upload())
app.add_route("/go", Go())
app.add_route("/stream/{token}", stream)
app.add_route("/release/{token}", stream, suffix="release")
app.add_route("/shout", Shout())
