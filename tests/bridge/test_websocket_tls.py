"""WebSockets over TLS (``wss``), with a self-signed certificate made in the test.

The client is websockets' asyncio one: the sync client reads in a thread while
the caller writes, two threads in one TLS session, which loses the handshake
now and then on a loaded machine (python-websockets/websockets#1648).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.bridge.ws_helpers import new_id, received
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
DEADLINE = 30


@pytest.fixture(scope="module")
def server(certificate: tuple[Path, Path]) -> Iterator[RunningServer]:
    cert, key = certificate
    with run_server([str(HERE / "ws_server.py"), "--tls", str(cert), str(key)]) as running:
        yield running


@pytest.fixture(scope="module")
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def tls_log(server: RunningServer, client_tls: ssl.SSLContext, conn_id: str) -> list[dict[str, Any]]:
    with httpx.Client(verify=client_tls, timeout=40) as http:
        r = http.get(f"https://127.0.0.1:{server.port}/ws/log", params={"id": conn_id})
    r.raise_for_status()
    events: list[dict[str, Any]] = r.json()
    return events


def test_wss_scope_and_echo(server: RunningServer, client_tls: ssl.SSLContext) -> None:
    """Assertion 61: the scheme is wss; the tls extension is there too; 1 MiB crosses TLS intact."""
    conn_id = new_id()
    big = bytes(range(256)) * 4096

    async def echo() -> list[str | bytes]:
        url = f"wss://127.0.0.1:{server.port}/ws/echo?id={conn_id}"
        async with asyncio.timeout(DEADLINE), connect(url, ssl=client_tls, max_size=None) as ws:
            await ws.send("secure")
            short = await ws.recv()
            await ws.send(big)
            return [short, await ws.recv()]

    assert asyncio.run(echo()) == ["secure", big]
    scope = tls_log(server, client_tls, conn_id)[0]["scope"]
    assert scope["scheme"] == "wss"
    assert scope["root_path"] == "/ws"
    assert scope["extensions"] == ["tls", "websocket.http.response"]
    assert scope["tls"] in (0x0303, 0x0304)


def test_wss_denial(server: RunningServer, client_tls: ssl.SSLContext) -> None:
    async def attempt() -> None:
        async with asyncio.timeout(DEADLINE):
            await connect(f"wss://127.0.0.1:{server.port}/ws/deny_custom?id={new_id()}", ssl=client_tls)

    with pytest.raises(InvalidStatus) as info:
        asyncio.run(attempt())
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"nope"


def test_wss_close_codes_both_ways(server: RunningServer, client_tls: ssl.SSLContext) -> None:
    async def closed_by_server() -> ConnectionClosed:
        url = f"wss://127.0.0.1:{server.port}/ws/close?id={new_id()}&code=4000&reason=done"
        async with asyncio.timeout(DEADLINE), connect(url, ssl=client_tls) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
        return info.value

    async def close_from_client(conn_id: str) -> None:
        url = f"wss://127.0.0.1:{server.port}/ws/echo?id={conn_id}"
        async with asyncio.timeout(DEADLINE), connect(url, ssl=client_tls) as ws:
            await ws.close(4001, "bye")

    closed = asyncio.run(closed_by_server())
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4000, "done")
    conn_id = new_id()
    asyncio.run(close_from_client(conn_id))
    disconnect = received(tls_log(server, client_tls, conn_id))[-1]
    assert (disconnect["code"], disconnect["reason"]) == (4001, "bye")
