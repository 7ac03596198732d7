"""The request path's promises, against apps that are not well behaved (issue 15).

- ``send()`` means sent: an app that computes after its last ``send()`` does not hold its response.
- ``receive()`` answering from state yields to the loop: an app spinning on it cannot freeze the process.
- One response per request: once the channel answered a request itself, the app's answer never follows it.
- Memory held for a request body depends on what is held, not on how the client sliced it.
"""

from __future__ import annotations

import re
import select
import socket
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, raw_exchange, run_server, wait_for

HERE = Path(__file__).parent
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
MiB = 1024 * 1024


@pytest.fixture(scope="module", params=["twisted", "httptools"])
def parser(request: pytest.FixtureRequest) -> str:
    """Every promise holds on both HTTP/1.1 parsers."""
    return str(request.param)


@pytest.fixture(scope="module")
def server(parser: str) -> Iterator[RunningServer]:
    with run_server([str(HERE / "request_path_server.py"), parser, "60"]) as running:
        yield running


@pytest.fixture(scope="module")
def impatient(parser: str) -> Iterator[RunningServer]:
    """The same apps behind a one-second idle timeout (a stalled body gets 408)."""
    with run_server([str(HERE / "request_path_server.py"), parser, "1"]) as running:
        yield running


def seen(server: RunningServer, key: str) -> str:
    return httpx.get(f"{server.url}/control/?{key}", timeout=30).text


def statuses(reply: bytes) -> list[int]:
    return [int(m.group(1)) for m in STATUS_LINE.finditer(reply)]


def rss(server: RunningServer) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


# -- send() means sent ----------------------------------------------------------


def test_response_reaches_the_client_while_a_background_task_computes(server: RunningServer) -> None:
    marker = Path(tempfile.mkdtemp()) / "got-response"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /bg/?marker={marker} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        reply = b""
        while not reply.endswith(b"done"):
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
        marker.touch()  # the crunch loop, still computing if the bytes left at send(), sees it
    assert statuses(reply) == [200]
    assert seen(server, "crunch") == "client had the response while the task computed"


# -- receive() from state yields ------------------------------------------------


def test_an_app_spinning_on_receive_after_its_response_does_not_freeze_other_clients(server: RunningServer) -> None:
    with ThreadPoolExecutor(1) as pool:
        spinning = pool.submit(httpx.get, server.url + "/spin/", timeout=30)
        assert spinning.result().text == "spinning"
        assert httpx.get(server.url + "/ping/", timeout=30).text == "pong"
    assert seen(server, "spin") == "another client was served while this app spun"


# -- one response per request ----------------------------------------------------


def test_malformed_chunk_gets_one_400_and_not_the_apps_early_answer(server: RunningServer) -> None:
    reply = raw_exchange(
        server.port, b"POST /early/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    )
    assert statuses(reply) == [400], reply


def test_bare_lf_in_a_chunk_size_gets_one_400(server: RunningServer) -> None:
    reply = raw_exchange(
        server.port, b"POST /early/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n"
    )
    assert statuses(reply) == [400], reply


def test_body_over_the_limit_gets_one_413_and_not_the_apps_answer(server: RunningServer) -> None:
    chunk = b"%x\r\n%s\r\n" % (800, b"x" * 800)
    reply = raw_exchange(
        server.port, b"POST /early/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 2
    )
    assert statuses(reply) == [413], reply


def test_oversized_headers_get_one_431(server: RunningServer) -> None:
    reply = raw_exchange(server.port, b"GET /early/ HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
    assert statuses(reply) == [431], reply


def test_stalled_body_gets_one_408_and_the_app_sees_a_disconnect(impatient: RunningServer) -> None:
    reply = raw_exchange(impatient.port, b"POST /stall/ HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab")
    assert statuses(reply) == [408], reply
    assert seen(impatient, "after-stall") == "http.disconnect"
    assert seen(impatient, "after-stall-send") == "ClientDisconnected"


def test_a_pathsend_the_app_gives_up_on_ends_the_connection(server: RunningServer, tmp_path: Path) -> None:
    """The response can never be completed: the client gets what was sent, then the end, not silence."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (32 * MiB))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /pathsend/?{big} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_for(lambda: seen(server, "pathsend") == "timed out", "the app's timeout around pathsend")
        received = 0
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    assert 0 < received < 32 * MiB


# -- memory bounded by what is held ----------------------------------------------

#: What one stalled upload may cost the server, whatever its chunk sizes: the body the
#: app has not read (BODY_HIGH_WATER, 256 KiB) plus one network read, in one buffer.
PER_CONNECTION_BOUND = 1 * MiB


def stall_upload(port: int, chunk: bytes) -> socket.socket:
    """Open a chunked upload to the sink and send ``chunk`` frames until the server stops reading."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /sink/ HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    sock.setblocking(False)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    block = frame * (65536 // len(frame))
    sent = 0
    while sent < 64 * MiB:
        try:
            sent += sock.send(block)
        except BlockingIOError:
            # Not writable for a whole second: the kernel buffers are full because
            # the server stopped reading.  (A server that kept reading would take it.)
            if not select.select([], [sock], [], 1.0)[1]:
                return sock
    sock.close()
    raise AssertionError(f"the server read {sent} bytes of an upload nobody reads")


@pytest.mark.timeout(240)
def test_tiny_chunk_uploads_cost_a_bounded_amount_of_memory_per_connection(server: RunningServer) -> None:
    warm = stall_upload(server.port, b"ab")
    before = rss(server)
    socks = [stall_upload(server.port, b"ab") for _ in range(20)]
    try:
        growth = rss(server) - before
    finally:
        for s in [warm, *socks]:
            s.close()
    assert growth / 20 < PER_CONNECTION_BOUND, f"{growth / 20 / MiB:.2f} MiB per stalled 2-byte-chunk upload"
