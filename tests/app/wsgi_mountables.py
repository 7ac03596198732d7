"""Objects for the WSGI ``--mount`` tests, imported by the server subprocess.

``flask_app`` is a real framework app, the kind a team brings along when it migrates; the rest
are one object per kind that ``app.mounts.detect`` must tell apart, and near misses it must refuse.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, Response, redirect, request, stream_with_context, url_for
from twisted.web.resource import Resource
from twisted.web.server import Request
from werkzeug.wrappers import Response as BaseResponse

flask_app = Flask(__name__)


@flask_app.get("/")
def index() -> dict[str, str]:
    """Where Flask thinks it is: the mount point and the path below it, and URLs it builds."""
    return {
        "script_name": request.environ["SCRIPT_NAME"],
        "path_info": request.environ["PATH_INFO"],
        "script_root": request.script_root,
        "path": request.path,
        "url_for_greet": url_for("greet", name="ada"),
        "url_for_greet_external": url_for("greet", name="ada", _external=True),
    }


@flask_app.get("/greet/<name>")
def greet(name: str) -> str:
    return f"hello {name}"


@flask_app.post("/form")
def form() -> BaseResponse:
    """A form POST: echoes the fields, then redirects the way a web form does."""
    if request.args.get("redirect"):
        return redirect(url_for("greet", name=request.form["name"]))
    return Response(f"{request.form['name']} is {request.form['age']}", mimetype="text/plain")


@flask_app.post("/upload")
def upload() -> dict[str, object]:
    """A multipart upload: what arrived, so the test can compare it with what it sent."""
    data = request.files["file"].read()
    return {"name": request.form["name"], "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@flask_app.get("/count/<int:n>")
def count(n: int) -> Response:
    """A streamed response: one line per number, each its own chunk."""

    def lines() -> Iterator[str]:
        for i in range(n):
            yield f"line {i}\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


def wsgi_function(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The smallest WSGI app: a function of two parameters."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"wsgi at {environ['SCRIPT_NAME']}{environ['PATH_INFO']}".encode()]


async def asgi_function(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A small ASGI 3 app, with the lifespan protocol every mounted ASGI app is run through."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": f"asgi at {scope['path']}".encode()})


class Hello(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"resource at " + (request.path or b"")


resource = Hello()


def three_plain_parameters(a: object, b: object, c: object) -> None:
    """Neither: ASGI's three parameters, but not async."""


async def two_async_parameters(environ: object, start_response: object) -> None:
    """Neither: WSGI's two parameters, but async."""


class WSGIClass:
    """A class, not an app: an instance of it would be one."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return []


a_string = "not an app"
