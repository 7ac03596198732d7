"""The timeouts of ``hybrid serve`` over raw sockets: who gets cut off, with what, and /healthz after.

The server runs with short timeouts (configuration, not expectations): ``--header-timeout 0.3
--idle-timeout 0.4 --response-timeout 1 --disconnect-grace 0.2``. A test waits for the server to
act, bounded by the socket's patience, and never measures how long it took. The WebSocket
keepalive timeout is tested with the WebSocket bridge (``tests/bridge/test_websocket.py``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import hybrid_argv, running
from tests.hardening.conftest import MOUNTS, Server, serve
from tests.hardening.wire import PATIENCE, connect, exchange, read_until_closed

TIMEOUTS = ("--header-timeout", "0.3", "--idle-timeout", "0.4", "--response-timeout", "1", "--disconnect-grace", "0.2")


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[Server]:
    with serve(*TIMEOUTS, http=http) as running_server:
        yield running_server


def test_incomplete_headers_get_408_and_close(server: Server) -> None:
    reply = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # ...and never the blank line
    assert (reply.status, reply.closed) == (408, True)
    assert server.healthy()


def test_slowloris_trickling_header_lines_gets_408(server: Server) -> None:
    """Every byte resets Twisted's idle timeout; the header deadline does not move."""
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.1)  # the pace of the trickle
        sent = 0
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"X-Trickle-%d: v\r\n" % sent)
                sent += 1
                assert sent < PATIENCE / 0.1, "the server let the trickle go on"
                continue
            sock.settimeout(PATIENCE)
            reply = data + read_until_closed(sock).data
            break
    assert sent > 1
    assert reply.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert server.healthy()


@pytest.mark.parametrize("side", ["a", "n"])
def test_stalled_body_gets_408_and_close(server: Server, side: str) -> None:
    """A body that stops arriving: the idle timeout closes, saying 408 since nothing was answered."""
    reply = exchange(
        server.port, b"POST /%s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789" % side.encode()
    )
    assert (reply.status, reply.closed) == (408, True)
    assert server.healthy()


def test_idle_keep_alive_connection_is_closed_quietly(server: Server) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = read_until_closed(sock)
    assert reply.closed
    assert reply.data.count(b"HTTP/1.1 ") == 1  # the answer, then a close without a 408
    assert reply.status == 200
    assert server.healthy()


def test_app_without_a_response_gets_504_and_is_cancelled(server: Server) -> None:
    reply = exchange(server.port, b"GET /a/hang HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (reply.status, reply.closed, reply.body) == (504, True, b"Gateway Timeout\n")
    assert "Answering GET /a/hang with 504" in server.log()
    server.wait_until_settled()  # the app's task is gone, not just its client
    assert server.healthy()


def test_lifespan_startup_timeout_stops_the_server() -> None:
    argv = hybrid_argv("--mount", "/s=tests.hardening.apps:stuck_startup", "--startup-timeout", "0.3")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "lifespan startup did not complete within 0.3 s" in done.stdout
    assert "hybrid serving on" not in done.stdout  # it never listened


def test_lifespan_shutdown_timeout_is_bounded() -> None:
    argv = hybrid_argv(*MOUNTS, "--mount", "/s=tests.hardening.apps:stuck_shutdown", "--shutdown-timeout", "0.3")
    with running(argv) as process:
        assert process.stop() == 0
        assert "lifespan shutdown did not complete within 0.3 s" in process.log()


def test_hypercorn_front_header_timeout_closes_slow_headers() -> None:
    """Mapped to Hypercorn's keep_alive_timeout, which closes without an answer."""
    with serve("--server", "hypercorn", "--header-timeout", "0.3", mounts=False) as server:
        reply = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert (reply.data, reply.closed) == (b"", True)
        assert server.healthy()
