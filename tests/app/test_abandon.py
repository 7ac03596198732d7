"""A client that leaves early: the pending work is cancelled and counted, on both sides."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO, HybridProcess, hybrid_argv, running
from tests.servers import wait_for

ENDPOINTS = [
    ("twisted", "delayed"),
    ("twisted", "stream"),
    ("twisted", "await-asyncio"),
    ("asgi", "delayed"),
    ("asgi", "stream"),
    ("asgi", "await-twisted"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    with running(hybrid_argv()) as server:
        yield server


def _side(server: HybridProcess, side: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{server.url}/stats").json()[side]
    return result


@pytest.mark.parametrize(("side", "endpoint"), ENDPOINTS)
def test_disconnect_counts_abandoned(server: HybridProcess, side: str, endpoint: str) -> None:
    """A raw client asks for a 60 s response, waits until it is in flight, and hangs up."""
    before = _side(server, side)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /{side}/{endpoint}?delay=60 HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        wait_for(lambda: _side(server, side)["in_flight"] == before["in_flight"] + 1, "in flight")
    wait_for(lambda: _side(server, side)["abandoned"] == before["abandoned"] + 1, "abandoned")
    after = _side(server, side)
    assert after["in_flight"] == before["in_flight"]
    assert after["completed"] == before["completed"]


def test_nothing_left_pending_in_process(tmp_path: Path) -> None:
    """In one process: while requests wait, their delayed calls and tasks exist; once the
    clients are gone, no delayed call or asyncio task of theirs remains."""
    try:
        result = subprocess.run(
            [sys.executable, str(REPO / "tests" / "app" / "abandon_probe.py"), str(tmp_path / "s")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the probe hung; its output:\n{e.stdout!r}\n{e.stderr!r}") from None
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "error" not in report, report
    during, after = report["during"], report["after"]
    # The work: native delayed and stream calls, and the deferLater awaited by the ASGI side.
    for work in ("DelayedResource._delayed_render", "_ChunkWriter._write_next", "Deferred.callback"):
        assert sum(work in call for call in during["delayed_calls"]) == 1, (work, during)
    assert any("_late_body" in task for task in during["tasks"]), during
    # The app's tasks: the Starlette app, inside the WebSocket meter of app.metrics_web.
    assert sum("WebSocketMeter.__call__" in task for task in during["tasks"]) == 3, during
    assert after["tasks"] == [], after
    assert after["delayed_calls"] == [], after
    for side in ("twisted", "asgi"):
        assert report["stats"][side]["abandoned"] == 3
        assert report["stats"][side]["in_flight"] == 0
        assert report["stats"][side]["completed"] == 0
