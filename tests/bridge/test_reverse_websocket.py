"""Twisted's own ``WebSocketResource`` served through ``TwistedResourceApp`` by the Hypercorn and
Uvicorn command lines, with the ``websockets`` client: the ASGI ``websocket`` scope carries it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.bridge.asgi_cli import SERVERS, CLIServer, serving
from tests.bridge.shapes.legacy_ws import CHUNK


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CLIServer]:
    env = {"LEGACY_FILES": str(tmp_path)}
    with serving(request.param, "tests.bridge.shapes.eager:app", env=env, ready_path="/ws-state") as running:
        yield running


def ws_url(server: CLIServer, path: str = "/ws") -> str:
    return server.url.replace("http://", "ws://") + path


@contextmanager
def opened(server: CLIServer) -> Iterator[ClientConnection]:
    with connect(ws_url(server), max_size=None, open_timeout=30, close_timeout=10) as client:
        assert client.recv(timeout=10) == "welcome"  # sent from negotiationFinished
        yield client


def state(server: CLIServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(server.url + "/ws-state").json()
    return answer


def wait_for_state(server: CLIServer, check: Any, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while not check(current := state(server)):
        assert time.monotonic() < deadline, f"never saw {what}: {current}"
        time.sleep(0.02)
    return current


def test_text_and_binary_messages(server: CLIServer) -> None:
    with opened(server) as client:
        client.send("héllo")
        assert client.recv(timeout=10) == "héllo"
        client.send(bytes(range(256)))
        assert client.recv(timeout=10) == bytes(range(256))
        client.send(b"")
        assert client.recv(timeout=10) == b""


def test_fragmented_messages_arrive_whole(server: CLIServer) -> None:
    with opened(server) as client:
        client.send(["frag", "men", "ted"])
        assert client.recv(timeout=10) == "fragmented"
        client.send([b"\x00" * 70_000, b"\x01" * 70_000])
        assert client.recv(timeout=10) == b"\x00" * 70_000 + b"\x01" * 70_000


def test_client_pings_are_answered(server: CLIServer) -> None:
    with opened(server) as client:
        assert client.ping(b"are you there").wait(timeout=10)
        client.send("still echoing")
        assert client.recv(timeout=10) == "still echoing"


def test_pings_from_twisted_are_logged_as_impossible(server: CLIServer) -> None:
    with opened(server) as client:
        client.send("ping abc")
        client.send("after the ping")
        assert client.recv(timeout=10) == "after the ping"
    assert "called ping(), which cannot be carried over ASGI" in server.output()


def test_server_close_code_reaches_the_client(server: CLIServer) -> None:
    with opened(server) as client:
        client.send("close 4001")
        with pytest.raises(ConnectionClosedError):
            client.recv(timeout=10)
        assert client.close_code == 4001
    wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")
    assert state(server)["endings"] == [CLEAN + "The WebSocket was closed by the server."]


CLEAN = "ConnectionDone: Connection was closed cleanly: "
LOST = "ConnectionLost: Connection to the other side was lost in a non-clean fashion: "

#: What each server's ``websocket.disconnect`` says when the client sends a close frame with
#: code 4002: Uvicorn passes the code on; Hypercorn 0.18 reports every client close as 1006.
CLIENT_CLOSE = {
    "uvicorn": CLEAN + "The client closed the WebSocket with code 4002.",
    "hypercorn": LOST + "The client's WebSocket connection was lost (code 1006).",
}

#: ... and when the client's socket just goes away: 1005 (no status) from Uvicorn, 1006 from Hypercorn.
CLIENT_DROP = {
    "uvicorn": LOST + "The client's WebSocket connection was lost (code 1005).",
    "hypercorn": LOST + "The client's WebSocket connection was lost (code 1006).",
}


def test_client_close_code_reaches_twisted_as_the_server_reports_it(server: CLIServer) -> None:
    with opened(server) as client:
        client.close(code=4002, reason="bye")
    ending = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")["endings"]
    assert ending == [CLIENT_CLOSE[server.name]]


def test_dropped_client_is_a_lost_connection(server: CLIServer) -> None:
    with opened(server) as client:
        client.socket.shutdown(socket.SHUT_RDWR)
    ending = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")["endings"]
    assert ending == [CLIENT_DROP[server.name]]


def test_a_slow_reader_pauses_the_producer(server: CLIServer) -> None:
    """2000 messages of 64 KiB (131 MB) for a client that reads nothing at first: the producer
    is paused once the server's send() stops taking messages, then all of them arrive intact."""
    count = 2000
    with opened(server) as client:
        client.send(f"stream {count}")
        paused = wait_for_state(
            server, lambda s: s["streams"] and s["streams"][0]["paused"] and s["streams"][0]["sent"] > 0, "a pause"
        )
        assert paused["streams"][0]["sent"] < count
        received = [client.recv(timeout=30) for _ in range(count)]
        assert all(message == CHUNK for message in received)
        summary = client.recv(timeout=10)
        assert isinstance(summary, str) and summary.startswith(f"streamed {count}, paused ")
        assert int(summary.rsplit(" ", 1)[1]) >= 1


def test_paths_that_do_not_upgrade_are_refused_with_their_status(server: CLIServer) -> None:
    """A 404 from the tree reaches the client as a 404 (``websocket.http.response``)."""
    with pytest.raises(InvalidStatus) as refused, connect(ws_url(server, "/nowhere"), open_timeout=30):
        pass
    assert refused.value.response.status_code == 404
    assert httpx.get(server.url + "/klein/hello/still").text == "hello still"


def test_clean_shutdown_with_an_open_websocket(server: CLIServer) -> None:
    with opened(server) as client:
        assert server.stop(), server.output()
        with pytest.raises((ConnectionClosedOK, ConnectionClosedError)):
            client.recv(timeout=10)
        # Hypercorn logs a CancelledError of its own for any open WebSocket on shutdown.
        assert "bridge/reverse" not in server.output()
