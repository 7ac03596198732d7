"""Quart through ``hybrid serve --mount``, at ``/`` and at ``/mnt``, against Hypercorn (Quart's own server).

Quart runs ``before_serving``/``after_serving`` in the ASGI lifespan, strips ``root_path`` from
``path`` itself for routing, builds ``url_for`` URLs with it, and speaks WebSocket.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from tests.conftest import REPO
from tests.thirdparty.fronts import PLACEMENTS, SUBPATH, Front, Placement, command, serve
from tests.thirdparty.quart_app import AFTER_SERVING, FAIL_STARTUP
from tests.thirdparty.streaming import assert_streams

APP = "tests.thirdparty.quart_app:app"
DEADLINE = 15.0


@pytest.fixture(scope="module", params=PLACEMENTS, ids=str)
def front(request: pytest.FixtureRequest) -> Iterator[Front]:
    with serve(request.param, APP) as front:
        yield front


@pytest.fixture
def client(front: Front) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, timeout=DEADLINE) as client:
        yield client


def test_quart_sees_its_mount_point_and_what_startup_did(front: Front, client: httpx.Client) -> None:
    assert client.get("/").json() == {
        "root_path": front.prefix,
        "path": "/",
        "url_for_item": f"{front.prefix}/items/7",
        "url_for_item_external": f"{front.url}/items/7",
        "started_by": "before_serving",
    }


def test_path_and_query_parameters(client: httpx.Client) -> None:
    assert client.get("/items/5?q=x&q=y").json() == {"id": 5, "q": ["x", "y"]}
    assert client.get("/items/five").status_code == 404


def test_absolute_form_request_target(front: Front) -> None:
    """``GET http://host/path`` (RFC 9112 3.2.2: a server MUST accept it; clients send it to proxies).

    ``bridge.StreamingSite`` routes and builds the scope on the origin form (``/path``); Hypercorn
    puts the whole URI in ``scope["path"]``, which Quart copes with.
    """
    host, port = front.origin.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=DEADLINE) as connection:
        connection.sendall(
            f"GET {front.url}/items/3 HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b"".join(iter(lambda: connection.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"id":3,"q":[]}\n')


def test_json_round_trip(client: httpx.Client) -> None:
    document = {"a": [1, 2.5, None, {"b": "ü"}]}
    assert client.post("/json", json=document).json() == {"got": document}


def test_redirect_built_with_url_for(front: Front, client: httpx.Client) -> None:
    response = client.get("/go", follow_redirects=True)
    assert [(r.status_code, r.headers["location"]) for r in response.history] == [(302, f"{front.prefix}/items/3")]
    assert response.json() == {"id": 3, "q": []}


def test_streaming_response_arrives_as_it_is_written(client: httpx.Client) -> None:
    assert assert_streams(client, "/stream/s1", "/release/s1").headers["transfer-encoding"] == "chunked"


def test_websocket_subprotocol_messages_and_close_code(front: Front) -> None:
    with connect(f"{front.ws_url}/ws/ada", subprotocols=[Subprotocol("chat")], open_timeout=DEADLINE) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response is not None and ws.response.headers["x-chat-room"] == "ada"
        assert ws.recv(timeout=DEADLINE) == f'{{"path": "/ws/ada", "url_for_index": "{front.prefix}/"}}'
        ws.send("hello")
        assert ws.recv(timeout=DEADLINE) == "ada: hello"
        ws.send("bye")
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=DEADLINE)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye yourself")


def test_websocket_large_binary_message(front: Front) -> None:
    """4 MiB in one message, many TCP reads and frames' worth, reassembled before the app sees it."""
    data = os.urandom(4 * 2**20)
    with connect(f"{front.ws_url}/ws/bin", open_timeout=DEADLINE, max_size=None) as ws:
        ws.recv(timeout=DEADLINE)
        ws.send(data)
        assert ws.recv(timeout=DEADLINE) == hashlib.sha256(data).digest()


def test_websocket_without_subprotocol(front: Front) -> None:
    with connect(f"{front.ws_url}/ws/bob", open_timeout=DEADLINE) as ws:
        assert ws.subprotocol is None
        ws.recv(timeout=DEADLINE)
        ws.send("hi")
        assert ws.recv(timeout=DEADLINE) == "bob: hi"


def test_websocket_to_an_unknown_route_gets_quarts_404(front: Front) -> None:
    """Quart answers the handshake with its HTTP 404 page through ``websocket.http.response``."""
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{front.ws_url}/nowhere", open_timeout=DEADLINE).close()
    assert refused.value.response.status_code == 404
    assert b"Not Found" in refused.value.response.body


@pytest.mark.parametrize("placement", [p for p in PLACEMENTS if p.prefix == SUBPATH], ids=str)
def test_failed_startup_exits_non_zero_without_running_shutdown(placement: Placement) -> None:
    """``before_serving`` raises, so Quart sends ``lifespan.startup.failed``: the server logs the
    message and exits non-zero without serving. It must not send ``lifespan.shutdown`` to an app
    that never started (Hypercorn and Uvicorn do not), or ``after_serving`` runs against half-made
    state. The bridge used to send it when the reactor stopped after the failure."""
    result = subprocess.run(
        command(placement, APP),
        cwd=REPO,
        env={**os.environ, FAIL_STARTUP: "no database today"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "no database today" in output
    assert "hybrid serving on" not in output and "Running on" not in output
    assert AFTER_SERVING not in output


@pytest.mark.parametrize("placement", [p for p in PLACEMENTS if p.prefix == SUBPATH], ids=str)
def test_sigterm_runs_after_serving_and_exits_zero(placement: Placement) -> None:
    """Lifespan shutdown: ``after_serving`` runs before the process exits, which it does with 0."""
    with serve(placement, APP) as front:
        assert httpx.get(f"{front.url}/", timeout=DEADLINE).json()["started_by"] == "before_serving"
        assert front.stop() == 0
        assert AFTER_SERVING in front.log()
