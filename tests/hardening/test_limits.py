"""The limits of ``hybrid serve`` over raw sockets: each one answered as documented, then /healthz.

The server runs with small limits (the values are configuration, not expectations):
``--max-in-flight 3 --max-body-size 64K --max-connections 40 --max-header-count 20
--max-header-bytes 4K --ws-max-message-size 1K``. The bridge's own limits are tested in
``tests/bridge/test_limits.py``, ``tests/bridge/test_site_guards.py`` and
``tests/bridge/test_websocket.py``; this checks that the options reach every mount.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets

from tests.hardening.conftest import Server, serve
from tests.hardening.wire import connect, exchange, read_until_closed
from tests.servers import wait_for

IN_FLIGHT = 3
CONNECTIONS = 40


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[Server]:
    limits = ["--max-in-flight", str(IN_FLIGHT), "--max-body-size", "64K", "--max-connections", str(CONNECTIONS)]
    headers = ["--max-header-count", "20", "--max-header-bytes", "4K"]
    with serve(
        *limits, *headers, "--ws-max-message-size", "1K", "--disconnect-grace", "0.2", http=http
    ) as running_server:
        yield running_server


def test_body_within_the_limit_is_read(server: Server) -> None:
    r = httpx.post(server.url + "/a/echo", content=b"x" * 65536)
    assert (r.status_code, r.json()["body_length"]) == (200, 65536)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /a/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\nExpect: 100-continue\r\n\r\n",
        b"POST /a/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (40000, b"y" * 40000) * 2,
    ],
    ids=["declared", "chunked"],
)
def test_body_over_the_limit_gets_413_and_close(server: Server, request_bytes: bytes) -> None:
    reply = exchange(server.port, request_bytes)
    assert (reply.status, reply.closed) == (413, True)
    assert b"100 Continue" not in reply.data
    assert server.healthy()


def _count(server: Server, path: str) -> Callable[[], int]:
    """How many requests ``path`` holds, from /stats or from the *other* mount's /held (this one is full)."""
    if path.startswith(("/asgi/", "/twisted/")):
        side = path.split("/")[1]
        return lambda: int(server.stats()[side]["in_flight"])
    other, side = ("/n/held", "asgi") if path.startswith("/a/") else ("/a/held", "native")
    return lambda: int(httpx.get(server.url + other).json()[side])


@pytest.mark.parametrize(
    "path",
    ["/asgi/delayed?delay=60", "/twisted/delayed?delay=60", "/a/hold", "/n/hold"],
    ids=["site-asgi-side", "site-twisted-side", "mounted-asgi", "mounted-native"],
)
def test_requests_beyond_max_in_flight_get_503_with_retry_after(server: Server, path: str) -> None:
    held: list[socket.socket] = []
    count = _count(server, path)
    try:
        for _ in range(IN_FLIGHT):
            sock = connect(server.port)
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
            held.append(sock)
        wait_for(lambda: count() == IN_FLIGHT, f"{IN_FLIGHT} requests held at {path}")
        refused = httpx.get(server.url + path, timeout=10)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.text == "Service Unavailable\n"
        assert server.healthy()  # the limit is per mount: the rest of the site answers
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: count() == 0, f"the abandoned requests at {path} to end")


def test_connections_beyond_max_connections_get_503(server: Server) -> None:
    server.wait_until_settled()  # no connection left from earlier tests but the fixture's /stats one
    held = [connect(server.port) for _ in range(CONNECTIONS - 1)]
    try:
        for sock in held:  # a full exchange proves each connection was accepted and counted
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        with connect(server.port) as extra:
            reply = read_until_closed(extra)
        assert (reply.status, reply.closed, reply.header(b"retry-after")) == (503, True, b"1")
    finally:
        for sock in held:
            sock.close()
    wait_for(server.healthy, "a free connection slot")


def test_websocket_message_over_the_limit_closes_with_1009(server: Server) -> None:
    async def send_too_much() -> int | None:
        async with websockets.connect(server.url.replace("http", "ws", 1) + "/asgi/live") as ws:
            await ws.send("x" * 1025)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
        return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(send_too_much()) == 1009
    assert server.healthy()


def test_too_many_headers_get_400(server: Server) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(21))
    reply = exchange(server.port, b"GET /a/echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert (reply.status, reply.closed) == (400, True)
    assert server.healthy()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /a/echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 5000 + b"\r\n\r\n",
        b"GET /a/echo HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: %s\r\n" % (i, b"c" * 300) for i in range(15))
        + b"\r\n",
        b"GET /a/echo?" + b"q" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["one-long-header", "many-headers", "long-request-line"],
)
def test_headers_over_max_header_bytes_get_431(server: Server, request_bytes: bytes) -> None:
    reply = exchange(server.port, request_bytes)
    assert (reply.status, reply.closed) == (431, True)
    assert server.healthy()


# -- the Hypercorn front: the native sides keep their limits (``app.hypercorn_front``) --------


@pytest.fixture(scope="module")
def hypercorn() -> Iterator[Server]:
    limits = ["--max-in-flight", str(IN_FLIGHT), "--max-body-size", "1K"]
    with serve("--server", "hypercorn", *limits, mounts=False) as running_server:
        yield running_server


def test_hypercorn_front_bounds_the_native_sides_in_flight(hypercorn: Server) -> None:
    held = []
    try:
        for _ in range(IN_FLIGHT):
            sock = connect(hypercorn.port)
            sock.sendall(b"GET /twisted/delayed?delay=60 HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(sock)
        wait_for(lambda: hypercorn.stats()["twisted"]["in_flight"] == IN_FLIGHT, "the native side full")
        refused = httpx.get(hypercorn.url + "/twisted/delayed?delay=0", timeout=10)
        assert (refused.status_code, refused.headers["retry-after"]) == (503, "1")
        assert hypercorn.healthy()
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: hypercorn.stats()["twisted"]["in_flight"] == 0, "the abandoned requests to end")


def test_hypercorn_front_refuses_large_bodies_to_native_resources(hypercorn: Server) -> None:
    r = httpx.post(hypercorn.url + "/twisted/delayed", content=b"x" * 2048, timeout=10)
    assert r.status_code == 413
    assert hypercorn.healthy()
