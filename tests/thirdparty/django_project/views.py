"""Views that each exercise one thing a server can get wrong: paths, prefixes, bodies, streaming.

Every answer reports what Django saw, so a test can tell a server bug from a framework quirk.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import django
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

#: A real static asset from Django's own package (the admin's stylesheet), served as a file.
STATIC_FILE = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin" / "css" / "base.css"
#: How long a gated stream waits for its release before giving up (bounds a failing test).
GATE_TIMEOUT = 10.0

_gates: dict[str, threading.Event] = {}
#: How each gated stream ended: "done", "cancelled" (the server cancelled the task) or "closed"
#: (the server closed the iterator early), for the test of a client that leaves.
_outcomes: dict[str, str] = {}
_lock = threading.Lock()


def index(request: HttpRequest) -> JsonResponse:
    """Where Django thinks it is mounted, and the URLs it builds from there."""
    return JsonResponse(
        {
            "path": request.path,
            "path_info": request.path_info,
            "script_name": request.META["SCRIPT_NAME"],
            "full_path": request.get_full_path(),
            "reverse_item": reverse("item", args=[7]),
            "absolute_item": request.build_absolute_uri(reverse("item", args=[7])),
        }
    )


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    return JsonResponse({"id": item_id, "q": request.GET.getlist("q")})


def greet(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"hello {name}", content_type="text/plain; charset=utf-8")


def form(request: HttpRequest) -> HttpResponse:
    """A form protected by CSRF: GET renders the token, POST redirects to a URL built by reverse()."""
    if request.method == "POST":
        return redirect(reverse("thanks", args=[request.POST["name"]]))
    token = get_token(request)
    return HttpResponse(
        f'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input name="name"></form>'
    )


def thanks(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"thanks {name}", content_type="text/plain; charset=utf-8")


def visits(request: HttpRequest) -> JsonResponse:
    """A counter kept in the session, so it only grows if the session cookie comes back."""
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JsonResponse({"visits": request.session["visits"]})


def stream(request: HttpRequest, token: str) -> StreamingHttpResponse:
    """One chunk, then a second only once ``release/<token>/`` was requested (or the gate timed out).

    A client that reads the first chunk before releasing the gate proves the response streams.
    Django wants an async iterator under ASGI (a sync one is consumed whole first, in a thread)
    and a sync one under WSGI, so the view gives each handler the kind it wants. How the
    iterator ended is kept for ``outcome/<token>/``.
    """
    gate = _gate(token)
    if isinstance(request, ASGIRequest):

        async def async_chunks() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                released = await asyncio.to_thread(gate.wait, GATE_TIMEOUT)
                yield b"released\n" if released else b"timed out\n"
            except asyncio.CancelledError:
                _outcomes[token] = "cancelled"
                raise
            except GeneratorExit:
                _outcomes[token] = "closed"
                raise
            _outcomes[token] = "done"

        return StreamingHttpResponse(async_chunks(), content_type="text/plain")

    def chunks() -> Iterator[bytes]:
        try:
            yield b"first\n"
            yield b"released\n" if gate.wait(GATE_TIMEOUT) else b"timed out\n"
        except GeneratorExit:
            _outcomes[token] = "closed"
            raise
        _outcomes[token] = "done"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def release(request: HttpRequest, token: str) -> HttpResponse:
    _gate(token).set()
    return HttpResponse("released", content_type="text/plain")


def outcome(request: HttpRequest, token: str) -> JsonResponse:
    return JsonResponse({"outcome": _outcomes.get(token)})


def _gate(token: str) -> threading.Event:
    with _lock:
        return _gates.setdefault(token, threading.Event())


def static_file(request: HttpRequest) -> FileResponse:
    return FileResponse(STATIC_FILE.open("rb"))


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    """What arrived of a raw request body, to compare with what was sent."""
    return JsonResponse({"size": len(request.body), "sha256": hashlib.sha256(request.body).hexdigest()})


@csrf_exempt
def files(request: HttpRequest) -> JsonResponse:
    """A multipart form with a file, parsed by Django's upload handlers."""
    upload = request.FILES["file"]
    data = upload.read()
    return JsonResponse(
        {"name": request.POST["name"], "filename": upload.name, "sha256": hashlib.sha256(data).hexdigest()}
    )


async def async_view(request: HttpRequest) -> JsonResponse:
    """An ``async def`` view: on the server's loop under ASGI, in a worker thread under WSGI."""
    await asyncio.sleep(0)
    return JsonResponse({"path": request.path, "on_main_thread": threading.current_thread() is threading.main_thread()})


@csrf_exempt
def meta(request: HttpRequest) -> JsonResponse:
    """What the server told Django about the connection (CGI-style names, under both handlers)."""
    keys = ["REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "QUERY_STRING", "HTTP_X_TWICE"]
    return JsonResponse(
        {
            **{key: request.META.get(key) for key in keys},
            "scheme": request.scheme,
            "host": request.get_host(),
            "GET": {key: request.GET.getlist(key) for key in request.GET},
            "cookies": request.COOKIES,
            "content_type": request.content_type,
            "body": request.body.decode(),
        }
    )


def latin1_header(request: HttpRequest) -> HttpResponse:
    """A header value outside ASCII but inside Latin-1, which Django sends as that one byte."""
    response = HttpResponse("ok", content_type="text/plain")
    response["X-Name"] = "Jürgen"
    return response
