"""WebSockets over TLS (``wss``), with a self-signed certificate made in the test."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.bridge.ws_helpers import new_id, received
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent


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
    url = f"wss://127.0.0.1:{server.port}/ws/echo?id={conn_id}"
    with connect(url, ssl=client_tls, max_size=None, open_timeout=30) as ws:
        ws.send("secure")
        assert ws.recv(timeout=30) == "secure"
        big = bytes(range(256)) * 4096
        ws.send(big)
        assert ws.recv(timeout=30) == big
    scope = tls_log(server, client_tls, conn_id)[0]["scope"]
    assert scope["scheme"] == "wss"
    assert scope["root_path"] == "/ws"
    assert scope["extensions"] == ["tls", "websocket.http.response"]
    assert scope["tls"] in (0x0303, 0x0304)


def test_wss_denial(server: RunningServer, client_tls: ssl.SSLContext) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(f"wss://127.0.0.1:{server.port}/ws/deny_custom?id={new_id()}", ssl=client_tls, open_timeout=30)
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"nope"


def test_wss_close_codes_both_ways(server: RunningServer, client_tls: ssl.SSLContext) -> None:
    url = f"wss://127.0.0.1:{server.port}/ws/close?id={new_id()}&code=4000&reason=done"
    with connect(url, ssl=client_tls, open_timeout=30) as ws, pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=30)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "done")
    conn_id = new_id()
    with connect(f"wss://127.0.0.1:{server.port}/ws/echo?id={conn_id}", ssl=client_tls, open_timeout=30) as ws:
        ws.close(4001, "bye")
    disconnect = received(tls_log(server, client_tls, conn_id))[-1]
    assert (disconnect["code"], disconnect["reason"]) == (4001, "bye")
