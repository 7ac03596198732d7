"""1,000 concurrent WebSockets through one ASGIResource, each echoing 100 messages in order."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.servers import RunningServer, run_server, wait_for

HERE = Path(__file__).parent
CONNECTIONS = 1000
MESSAGES = 100


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "ws_server.py")]) as running:
        yield running


@pytest.fixture
def enough_file_descriptors() -> Iterator[None]:
    """This process holds 1,000 client sockets; the server script raises its own limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = CONNECTIONS + 256
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} this test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def echo_many(port: int) -> list[list[str]]:
    connected = 0
    everyone = asyncio.Event()

    async def one(i: int) -> list[str]:
        nonlocal connected
        async with connect(f"ws://127.0.0.1:{port}/ws/load", open_timeout=120, ping_interval=None) as ws:
            connected += 1
            if connected == CONNECTIONS:
                everyone.set()
            await everyone.wait()  # all 1,000 are open before any echoes
            sent = [f"{i}:{j}" for j in range(MESSAGES)]
            for message in sent:  # pipelined: all out before reading any back
                await ws.send(message)
            got = []
            for _ in sent:
                reply = await ws.recv()
                assert isinstance(reply, str)
                got.append(reply)
            return got

    return await asyncio.gather(*(one(i) for i in range(CONNECTIONS)))


@pytest.mark.timeout(600)
@pytest.mark.usefixtures("enough_file_descriptors")
def test_thousand_connections_echo_without_loss_or_reordering(server: RunningServer) -> None:
    results = asyncio.run(echo_many(server.port))
    for i, got in enumerate(results):
        assert got == [f"{i}:{j}" for j in range(MESSAGES)]
    load: dict[str, int] = {}

    def all_closed() -> bool:
        load.update(httpx.get(f"{server.url}/ws/load", timeout=10).json())
        return load["open"] == 0

    wait_for(all_closed, "the server to see every connection closed")
    assert load["peak"] == CONNECTIONS
