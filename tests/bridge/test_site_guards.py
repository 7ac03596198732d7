"""StreamingSite's guards over real sockets: header deadline, connection cap, header limits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, run_server, wait_for
from tests.tls import self_signed

HERE = Path(__file__).parent
SCRIPT = str(HERE / "guards_server.py")


@pytest.fixture(scope="module")
def quick() -> Iterator[RunningServer]:
    """A site whose clients get 0.3 s to send their headers."""
    with run_server([SCRIPT, "0.3", "0"]) as running:
        yield running


@pytest.fixture(scope="module")
def capped() -> Iterator[RunningServer]:
    """A site that accepts at most two connections at a time."""
    with run_server([SCRIPT, "30", "2"]) as running:
        yield running


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def test_slowloris_gets_408_and_is_closed(quick: RunningServer) -> None:
    with connect(quick.port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n")  # ...and never the blank line
        assert read_all(sock).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert "request headers incomplete" in quick.log()


def test_idle_keep_alive_connection_is_closed_quietly(quick: RunningServer) -> None:
    with connect(quick.port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert b"408" not in reply


def test_header_deadline_does_not_cut_a_slow_response(quick: RunningServer) -> None:
    """The deadline covers receiving headers, not the time the resource takes to answer."""
    r = httpx.get(quick.url + "/slow?delay=0.6", timeout=10)
    assert (r.status_code, r.text) == (200, "late")


def test_pipelined_requests_are_all_answered(quick: RunningServer) -> None:
    with connect(quick.port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        reply = read_all(sock)
    assert reply.count(b"HTTP/1.1 200 OK") == 3


def test_in_flight_counts_requests_in_progress(quick: RunningServer) -> None:
    with httpx.Client(base_url=quick.url, timeout=10) as client:
        pending = connect(quick.port)
        pending.sendall(b"GET /slow?delay=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: client.get("/state").text.split()[0] == "2", "the slow request to be in flight")
        pending.close()
        wait_for(lambda: client.get("/state").text.split()[0] == "1", "the abandoned request to end")


def test_too_many_headers_get_400(quick: RunningServer) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(25))
    with connect(quick.port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize(
    "headers",
    [b"X-Big: " + b"a" * 20000 + b"\r\n", b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(17))],
    ids=["one-long-line", "many-lines"],
)
def test_oversized_headers_get_431(quick: RunningServer, headers: bytes) -> None:
    with connect(quick.port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_connections_beyond_the_cap_get_503(capped: RunningServer) -> None:
    held = [connect(capped.port) for _ in range(2)]
    try:
        for sock in held:  # a full exchange proves each connection was accepted
            sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        with connect(capped.port) as extra:
            reply = read_all(extra)
        assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"Retry-After: 1" in reply
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: _status(capped.port) == 200, "a free connection slot after closing the held ones")


def _status(port: int) -> int:
    with connect(port) as sock:
        sock.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return int(read_all(sock).split(b" ", 2)[1])


def test_http2_connection_outlives_the_header_deadline(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with run_server([SCRIPT, "0.3", "0", "tls", str(cert), str(key)]) as server:
        url = f"https://127.0.0.1:{server.port}"
        with httpx.Client(http2=True, verify=False, timeout=10) as client:
            r = client.get(url + "/slow?delay=0.6")
            assert (r.http_version, r.status_code, r.text) == ("HTTP/2", 200, "late")
