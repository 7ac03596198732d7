"""HTTP/2 over TLS: Django (ASGI and WSGI) and Quart at ``/mnt``, under ``hybrid serve`` and Hypercorn.

Browsers speak HTTP/2 to any HTTPS server that offers it (ALPN), so most real traffic reaches
these apps this way. HTTP/2 carries the request line as pseudo-headers and lets the client
order the rest as it likes; h2 (the library under Twisted and Hypercorn) even moves the
``cookie`` fields to the end when it joins them. These tests send requests with bodies and
headers after ``content-length``, the case an HTTP/1.1-only test never sees. WebSockets stay
on HTTP/1.1 (neither server offers RFC 8441), over TLS: ``wss``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.thirdparty.fronts import PLACEMENTS, SUBPATH, Front, serve
from tests.thirdparty.streaming import assert_streams
from tests.thirdparty.test_django import HANDLERS, TOKEN
from tests.tls import self_signed

QUART = "tests.thirdparty.quart_app:app"
SERVERS = [placement for placement in PLACEMENTS if placement.prefix == SUBPATH]
DEADLINE = 15.0


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(
    scope="module",
    params=[(handler, placement) for handler in HANDLERS for placement in SERVERS],
    ids=lambda param: f"{param[0]}-{param[1]}",
)
def django(request: pytest.FixtureRequest, tls: tuple[Path, Path]) -> Iterator[Front]:
    handler, placement = request.param
    with serve(placement, HANDLERS[handler], tls) as front:
        yield front


@pytest.fixture(scope="module", params=SERVERS, ids=str)
def quart(request: pytest.FixtureRequest, tls: tuple[Path, Path]) -> Iterator[Front]:
    with serve(request.param, QUART, tls) as front:
        yield front


def h2_client(front: Front, tls: tuple[Path, Path]) -> httpx.Client:
    """A client that trusts the test certificate and offers HTTP/2 (and only gets it by ALPN)."""
    context = ssl.create_default_context(cafile=str(tls[0]))
    return httpx.Client(base_url=front.url, verify=context, http2=True, timeout=DEADLINE)


def test_django_post_keeps_the_headers_after_content_length(django: Front, tls: tuple[Path, Path]) -> None:
    """Cookie, Content-Type and a custom header all reach Django with the body."""
    with h2_client(django, tls) as client:
        client.cookies.set("a", "1")
        response = client.post("/meta/", content=b"hello", headers={"content-type": "text/plain", "x-twice": "1"})
    assert response.http_version == "HTTP/2"
    meta = response.json()
    got = {key: meta[key] for key in ("cookies", "content_type", "HTTP_X_TWICE", "body", "scheme")}
    assert got == {
        "cookies": {"a": "1"},
        "content_type": "text/plain",
        "HTTP_X_TWICE": "1",
        "body": "hello",
        "scheme": "https",
    }


def test_django_csrf_form_round_trip(django: Front, tls: tuple[Path, Path]) -> None:
    """The browser's case: the CSRF cookie and the form's Content-Type come after Content-Length."""
    with h2_client(django, tls) as client:
        token = TOKEN.search(client.get("/form/").text)
        assert token is not None
        posted = client.post(
            "/form/",
            data={"csrfmiddlewaretoken": token.group(1), "name": "ada"},
            headers={"origin": django.origin},
            follow_redirects=True,
        )
    assert [(r.status_code, r.headers["location"]) for r in posted.history] == [(302, f"{SUBPATH}/thanks/ada/")]
    assert (posted.http_version, posted.text) == ("HTTP/2", "thanks ada")


def test_django_streaming(django: Front, tls: tuple[Path, Path]) -> None:
    with h2_client(django, tls) as client:
        assert assert_streams(client, "/stream/h2/", "/release/h2/").http_version == "HTTP/2"


def test_quart_json_post(quart: Front, tls: tuple[Path, Path]) -> None:
    document = {"a": [1, {"b": "ü"}]}
    with h2_client(quart, tls) as client:
        response = client.post("/json", json=document)
    assert (response.http_version, response.json()) == ("HTTP/2", {"got": document})


def test_quart_url_for_uses_https(quart: Front, tls: tuple[Path, Path]) -> None:
    with h2_client(quart, tls) as client:
        index = client.get("/").json()
    assert index["url_for_item_external"] == f"{quart.url}/items/7"
    assert quart.url.startswith("https://")


def test_quart_websocket_over_tls(quart: Front, tls: tuple[Path, Path]) -> None:
    # The asyncio client, not the sync one: its reader thread and the caller's
    # writes race on one TLS session (python-websockets/websockets#1648).
    context = ssl.create_default_context(cafile=str(tls[0]))

    async def talk() -> list[str | bytes]:
        async with asyncio.timeout(DEADLINE), connect(f"{quart.ws_url}/ws/ada", ssl=context) as ws:
            greeting = await ws.recv()
            await ws.send("over tls")
            return [greeting, await ws.recv()]

    assert asyncio.run(talk()) == [f'{{"path": "/ws/ada", "url_for_index": "{SUBPATH}/"}}', "ada: over tls"]
