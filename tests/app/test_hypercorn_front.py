"""``hybrid serve --server hypercorn``: the whole site under Hypercorn, Twisted as a guest.

The endpoint tests (``test_endpoints.py``) run against this front too; here is what is
specific to it: the tutorial's concurrency claim on both sides, abandonment, and the process.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess

import httpx

from app.tutorial import BODY
from tests.conftest import hybrid_argv, running
from tests.servers import wait_for

CONCURRENCY = 50


async def _fire(url: str, paths: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.get(path) for path in paths))


def test_fifty_concurrent_requests_per_side_under_hypercorn() -> None:
    with running(hybrid_argv("--server", "hypercorn", "--delay", "2")) as server:
        assert server.reactor == "bridge._reactor.BridgeReactor"
        paths = [f"/{side}/delayed" for side in ("twisted", "asgi") for _ in range(CONCURRENCY)]
        responses = asyncio.run(_fire(server.url, paths))
        assert [(r.status_code, r.content) for r in responses] == [(200, BODY)] * len(paths)
        stats = httpx.get(f"{server.url}/stats").json()
        for side in ("twisted", "asgi"):
            assert stats[side]["peak_in_flight"] == CONCURRENCY, stats
            assert (stats[side]["completed"], stats[side]["in_flight"]) == (CONCURRENCY, 0)
        assert server.stop() == 0


def test_abandoned_native_request_is_counted_under_hypercorn() -> None:
    """The native resource's notifyFinish errback fires when the client leaves (it cancels the
    callLater; tests/bridge/test_reverse.py shows no delayed call is left)."""
    with running(hybrid_argv("--server", "hypercorn")) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as client:
            client.sendall(b"GET /twisted/delayed?delay=30 HTTP/1.1\r\nHost: test\r\n\r\n")
            wait_for(lambda: httpx.get(f"{server.url}/stats").json()["twisted"]["in_flight"] == 1, "in flight")
        wait_for(lambda: httpx.get(f"{server.url}/stats").json()["twisted"]["abandoned"] == 1, "abandoned")
        assert server.stop(signal.SIGINT) == 0


def test_mount_is_refused_with_one_line() -> None:
    result = subprocess.run(
        hybrid_argv("--server", "hypercorn", "--mount", "/x=app.site:build_site"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "hybrid serve: error: --mount is not supported with --server hypercorn yet\n"
