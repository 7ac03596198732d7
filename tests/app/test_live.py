"""``/asgi/live``: the counters of every side pushed over a WebSocket by a real ``hybrid serve``."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.conftest import HybridProcess

#: Each push comes 0.25 s after the previous one; this many is ample for any change to show.
MAX_PUSHES = 200


def feed(server: HybridProcess) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + "/asgi/live"
    return connect(url, open_timeout=30, close_timeout=30)


def until(ws: ClientConnection, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read pushes until one satisfies ``condition``; fail after ``MAX_PUSHES``."""
    for _ in range(MAX_PUSHES):
        snapshot: dict[str, Any] = json.loads(ws.recv(timeout=30))
        if condition(snapshot):
            return snapshot
    raise AssertionError(f"no push satisfied the condition; last: {snapshot}")


def counters(side: str, **expected: int) -> Callable[[dict[str, Any]], bool]:
    """A condition on one side's counters in a push."""
    return lambda snapshot: all(snapshot[side][key] == value for key, value in expected.items())


def start_request(server: HybridProcess, path: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def test_live_feed_pushes_what_stats_serves(hybrid_server: Callable[..., HybridProcess]) -> None:
    server = hybrid_server()
    with feed(server) as ws:
        first = json.loads(ws.recv(timeout=30))
        assert {"twisted", "asgi"} <= set(first)
        assert first["asgi"]["in_flight"] == 0  # the feed itself is not a counted request
        assert set(first["twisted"]) >= {"in_flight", "peak_in_flight", "completed", "abandoned"}


def test_live_feed_shows_requests_start_complete_and_be_abandoned(
    hybrid_server: Callable[..., HybridProcess],
) -> None:
    server = hybrid_server()
    with feed(server) as ws:
        for side in ("twisted", "asgi"):
            done = start_request(server, f"/{side}/delayed?delay=0")
            left = start_request(server, f"/{side}/delayed?delay=30")
            try:
                until(ws, counters(side, completed=1, in_flight=1))
            finally:
                done.close()
                left.close()  # the client leaves before the 30 s are up
            after = until(ws, counters(side, abandoned=1))
            assert after[side]["in_flight"] == 0
            assert after[side]["completed"] == 1
