"""Starlette and FastAPI apps mounted at sub-paths of a Twisted site, for test_frameworks.

Run as a script: serves on 127.0.0.1, an ephemeral port, and prints LISTENING <port>.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from bridge import http_channel_class, install_reactor

# The suite's fast-lane switches (see tests/conftest.py): uvloop, the llhttp channel.
install_reactor(loop=os.environ.get("HYBRID_TEST_LOOP"))
CHANNEL = http_channel_class(os.environ.get("HYBRID_TEST_HTTP", "twisted"))

import anyio  # noqa: E402
import anyio.lowlevel  # noqa: E402
from fastapi import FastAPI, Form  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import (  # noqa: E402
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route  # noqa: E402
from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402
from twisted.web.static import Data  # noqa: E402

from bridge import ASGIResource, StreamingSite  # noqa: E402

FILE = Path(sys.argv[1])
background_done: list[str] = []


async def item(request: Request) -> Response:
    return JSONResponse(
        {
            "id": request.path_params["item_id"],
            "q": request.query_params.getlist("q"),
            "url": str(request.url_for("item", item_id=7)),
            "root_path": request.scope["root_path"],
        }
    )


async def echo_json(request: Request) -> Response:
    return JSONResponse({"got": await request.json()})


async def form(request: Request) -> Response:
    data = await request.form()
    upload = data["file"]
    assert not isinstance(upload, str)
    return JSONResponse({"name": data["name"], "file": (await upload.read()).decode(), "filename": upload.filename})


async def set_cookie(request: Request) -> Response:
    response = RedirectResponse(request.url_for("whoami"), status_code=303)
    response.set_cookie("session", "abc123")
    response.set_cookie("theme", "dark")
    return response


async def whoami(request: Request) -> Response:
    return JSONResponse(dict(request.cookies))


async def download(request: Request) -> Response:
    return FileResponse(FILE, media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    async def numbers() -> AsyncIterator[str]:
        for i in range(5):
            yield f"{i}\n"
            await anyio.lowlevel.checkpoint()

    return StreamingResponse(numbers(), media_type="text/plain")


async def later(request: Request) -> Response:
    tag = request.query_params["tag"]

    async def record() -> None:
        await anyio.sleep(0.01)
        background_done.append(tag)

    return PlainTextResponse("accepted", background=BackgroundTask(record))


async def done(request: Request) -> Response:
    return JSONResponse(background_done)


star = Starlette(
    routes=[
        Route("/items/{item_id:int}", item, name="item"),
        Route("/json", echo_json, methods=["POST"]),
        Route("/form", form, methods=["POST"]),
        Route("/login", set_cookie),
        Route("/whoami", whoami, name="whoami"),
        Route("/download", download),
        Route("/stream", stream),
        Route("/later", later),
        Route("/done", done),
    ]
)

fast = FastAPI()


@fast.get("/users/{user_id}")
async def user(user_id: int, verbose: bool = False) -> dict[str, object]:
    return {"user_id": user_id, "verbose": verbose}


@fast.post("/login")
async def fast_login(username: str = Form(), password: str = Form()) -> dict[str, str]:
    return {"username": username, "password_length": str(len(password))}


@fast.get("/go")
async def go(request: Request) -> RedirectResponse:
    return RedirectResponse(str(request.url_for("user", user_id=3)), status_code=307)


root = Resource()
root.putChild(b"", Data(b"native root", "text/plain"))
root.putChild(b"star", ASGIResource(star))
api = Resource()
api.putChild(b"v1", ASGIResource(fast))
root.putChild(b"api", api)


def announce(port: object) -> None:
    print(f"LISTENING {port.getHost().port}", flush=True)  # type: ignore[attr-defined]


endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(
    StreamingSite(root, channel_class=CHANNEL)
).addCallback(announce)
reactor.run()
