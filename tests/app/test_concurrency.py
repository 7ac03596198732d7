"""The tutorial's claim on both sides: a pending request does not hold up the others.

50 concurrent requests per side, all pending at once: the server's own count of requests in
flight must reach 50 on each side, and every body must be exact. No wall-clock assertion: the
delay only has to outlast the time it takes to send 100 requests, and the default delay (the
tutorial's 5 seconds) leaves ample room.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from app.tutorial import BODY, stream_parts
from tests.conftest import HybridProcess

CONCURRENCY = 50


async def _fire(url: str, paths: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.get(path) for path in paths))


def test_fifty_concurrent_requests_per_side(hybrid_server: Callable[..., HybridProcess]) -> None:
    server = hybrid_server()
    paths = [f"/{side}/delayed" for side in ("twisted", "asgi") for _ in range(CONCURRENCY)]
    responses = asyncio.run(_fire(server.url, paths))
    assert [r.status_code for r in responses] == [200] * len(paths)
    assert all(r.content == BODY for r in responses)
    stats = httpx.get(f"{server.url}/stats").json()
    for side in ("twisted", "asgi"):
        assert stats[side]["peak_in_flight"] == CONCURRENCY, stats
        assert stats[side]["completed"] == CONCURRENCY
        assert stats[side]["in_flight"] == 0
        assert stats[side]["abandoned"] == 0
        assert stats[side]["latency"]["count"] == CONCURRENCY


def test_fifty_concurrent_streams_per_side(hybrid_server: Callable[..., HybridProcess]) -> None:
    """The repeated-write model holds 50 responses open at once too."""
    server = hybrid_server("--delay", "3")
    paths = [f"/{side}/stream" for side in ("twisted", "asgi") for _ in range(CONCURRENCY)]
    responses = asyncio.run(_fire(server.url, paths))
    assert all(r.content == b"".join(stream_parts()) for r in responses)
    stats = httpx.get(f"{server.url}/stats").json()
    assert [stats[side]["peak_in_flight"] for side in ("twisted", "asgi")] == [CONCURRENCY] * 2
