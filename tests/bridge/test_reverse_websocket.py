"""Twisted's own ``WebSocketResource`` served through ``TwistedResourceApp`` by the Hypercorn and
Uvicorn command lines, with the ``websockets`` client: the ASGI ``websocket`` scope carries it."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, Event, Request, TextMessage

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


def test_a_failing_protocol_closes_with_1011_and_is_logged(server: CLIServer) -> None:
    with opened(server) as client:
        client.send("fail")
        with pytest.raises(ConnectionClosedError):
            client.recv(timeout=10)
        assert client.close_code == 1011
    assert "RuntimeError: legacy WebSocket protocol failed on purpose" in server.output()
    ending = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")["endings"]
    assert ending == [CLEAN + "The WebSocket was closed by the server."]


def test_client_close_code_reaches_twisted_as_the_server_reports_it(server: CLIServer) -> None:
    with opened(server) as client:
        client.close(code=4002, reason="bye")
    ending = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")["endings"]
    assert ending == [CLIENT_CLOSE[server.name.split("-")[0]]]


def test_dropped_client_is_a_lost_connection(server: CLIServer) -> None:
    with opened(server) as client:
        client.socket.shutdown(socket.SHUT_RDWR)
    ending = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")["endings"]
    assert ending == [CLIENT_DROP[server.name.split("-")[0]]]


def test_a_reader_that_stops_pauses_the_producer(server: CLIServer) -> None:
    """2000 messages of 64 KiB (131 MB) for a client that reads nothing at first (a raw socket:
    the ``websockets`` client would read on in a thread): the producer stays paused with a few
    MB sent, then every message arrives intact once the client reads."""
    count = 2000
    client = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(client.send(Request(host="test", target="/ws")))
        events: list[Event] = []
        while not any(isinstance(event, AcceptConnection) for event in events):
            client.receive_data(sock.recv(4096))
            events.extend(client.events())
        sock.sendall(client.send(TextMessage(f"stream {count}")))
        paused = wait_for_state(server, lambda s: s["streams"] and s["streams"][0]["paused"], "a pause")
        assert 0 < paused["streams"][0]["sent"] < count
        received: list[bytes] = []
        texts: list[str] = []
        pending = b""
        while True:
            for event in events:
                if isinstance(event, BytesMessage):
                    pending += event.data
                    if event.message_finished:
                        received.append(pending)
                        pending = b""
                elif isinstance(event, TextMessage):
                    texts.append(event.data)
            if len(texts) == 2:  # "welcome", then the summary
                break
            client.receive_data(sock.recv(1 << 20))
            events = list(client.events())
    assert len(received) == count and all(message == CHUNK for message in received)
    assert texts[0] == "welcome"
    assert texts[1].startswith(f"streamed {count}, paused ")


def test_a_client_leaving_mid_stream_stops_the_producer(server: CLIServer) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(client.send(Request(host="test", target="/ws")))
        events: list[Event] = []
        while not any(isinstance(event, AcceptConnection) for event in events):
            client.receive_data(sock.recv(4096))
            events.extend(client.events())
        sock.sendall(client.send(TextMessage("stream 2000")))
        wait_for_state(server, lambda s: s["streams"] and s["streams"][0]["paused"], "a pause")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, no close frame
    final = wait_for_state(server, lambda s: s["endings"], "the protocol's connectionLost")
    assert final["endings"][0].startswith(LOST)
    assert final["streams"][0]["paused"] is True  # stopProducing
    assert final["streams"][0]["sent"] < 2000
    assert "Traceback" not in server.output()
    with opened(server) as again:  # and the server goes on serving
        again.send("next")
        assert again.recv(timeout=10) == "next"


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
