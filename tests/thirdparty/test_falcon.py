"""Falcon's ASGI app through ``hybrid serve --mount``, at ``/`` and at ``/mnt``, against Hypercorn.

Falcon routes on ``scope["path"]`` unchanged, so at a sub-path the app strips ``root_path`` in
a ``process_request`` middleware (see ``falcon_app``); ``/where`` shows why on both servers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.thirdparty.fronts import PLACEMENTS, Front, serve
from tests.thirdparty.streaming import assert_streams

APP = "tests.thirdparty.falcon_app:app"
DEADLINE = 15.0


@pytest.fixture(scope="module", params=PLACEMENTS, ids=str)
def front(request: pytest.FixtureRequest) -> Iterator[Front]:
    with serve(request.param, APP) as front:
        yield front


@pytest.fixture
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, timeout=DEADLINE) as client:
        yield client


def test_scope_path_includes_root_path_and_lifespan_state_reaches_requests(front: Front, client: httpx.Client) -> None:
    """``scope_path`` is the full path on both servers (ASGI 2.5); ``path`` is after StripRootPath.

    ``started_by`` was put in the lifespan ``state`` by ``process_startup``; each server copies
    that state into every request's scope.
    """
    assert client.get("/where").json() == {
        "scope_path": f"{front.prefix}/where",
        "root_path": front.prefix,
        "path": "/where",
        "uri": f"{front.url}/where",
        "started_by": "process_startup",
    }


def test_path_template_and_query_parameters(client: httpx.Client) -> None:
    assert client.get("/items/12?q=a&q=b").json() == {"id": 12, "q": ["a", "b"]}
    assert client.get("/items/twelve").status_code == 404


def test_media_post(client: httpx.Client) -> None:
    response = client.post("/items/4", json={"name": "ada", "tags": ["x"]})
    assert (response.status_code, response.json()) == (201, {"id": 4, "got": {"name": "ada", "tags": ["x"]}})


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_request_body_read_as_a_stream(client: httpx.Client, framing: str) -> None:
    data = os.urandom(8 * 2**20)
    content = data if framing == "content-length" else iter([data[i : i + 2**20] for i in range(0, len(data), 2**20)])
    response = client.post("/upload", content=content)
    assert response.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_see_other_redirect_under_the_prefix(front: Front, client: httpx.Client) -> None:
    response = client.get("/go", follow_redirects=True)
    assert [(r.status_code, r.headers["location"]) for r in response.history] == [(303, f"{front.prefix}/items/3")]
    assert response.json() == {"id": 3, "q": []}


def test_streaming_response_arrives_as_it_is_written(client: httpx.Client) -> None:
    assert assert_streams(client, "/stream/s1", "/release/s1").headers["transfer-encoding"] == "chunked"


def test_websocket_round_trip(front: Front) -> None:
    with connect(f"{front.ws_url}/shout", open_timeout=DEADLINE) as ws:
        for word in ("hello", "grüße"):
            ws.send(word)
            assert ws.recv(timeout=DEADLINE) == word.upper()


@pytest.mark.parametrize("path", ["/nowhere", "/where"])
def test_websocket_refused_by_falcon_is_403(front: Front, path: str) -> None:
    """No route, or a route without ``on_websocket``: Falcon closes before accepting, which servers
    answer with 403 (the bridge adds a short ``Forbidden`` body, Hypercorn sends none)."""
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{front.ws_url}{path}", open_timeout=DEADLINE).close()
    assert refused.value.response.status_code == 403
