"""What a hostile WebSocket client can make the server hold, measured as the server process's RSS.

A server of its own (``ws_server.py``), so no other test's connections move its memory.
Bounds asserted here are the ones ``bridge.websocket`` and ``bridge._ws_inbox`` state; the
thresholds leave room for allocator noise, far below what the unbounded behaviour reached
(issue 15: +116 MiB in 10 s for the ping flood; a 64 KiB read of a zip bomb inflated at once).
"""

from __future__ import annotations

import contextlib
import select
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect
from wsproto.events import AcceptConnection, CloseConnection, Ping
from wsproto.extensions import PerMessageDeflate

from tests.bridge.test_websocket_compression import json_text
from tests.bridge.test_websocket_deflate import BINARY, TEXT, frame
from tests.bridge.ws_helpers import RawClient
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
MiB = 1024 * 1024
#: A flooding client that could send this much without being stopped was not stopped.
FLOOD_LIMIT = 64 * MiB
#: The bound ``bridge.websocket.WebSocketSession`` states for a connection flooding pings.
PING_FLOOD_KIB = 256
#: What RSS may move by for reasons of its own (allocator arenas, the echo check).
ALLOCATOR_NOISE_KIB = 2048
#: How long a stalled send must stay stalled before the server counts as no longer reading.
STALLED = 5.0


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "ws_server.py")]) as running:
        yield running


def memory_kib(server: RunningServer, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of the server process, in KiB."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{server.proc.pid}/status")


def echo_still_works(server: RunningServer) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws/echo", open_timeout=30) as ws:
        ws.send("still serving")
        assert ws.recv(timeout=30) == "still serving"


def test_ping_flood_from_clients_that_never_read_stops_being_read(server: RunningServer) -> None:
    """4 clients send 125-byte pings as fast as they can and read nothing: RSS stays within 4 x 256 KiB.

    Measured: +0.7 MiB for the four (each client got about 6 MiB into the kernel's buffers
    before the server stopped reading); without the stop, every client sent its 64 MiB.
    """
    clients = [RawClient(server.port, "/ws/echo", rcvbuf=4096) for _ in range(4)]
    try:
        for client in clients:
            assert isinstance(client.handshake(), AcceptConnection)
            client.sock.setblocking(False)
        pings = b"".join(clients[0].ws.send(Ping(payload=b"p" * 125)) for _ in range(512))
        echo_still_works(server)
        before = memory_kib(server, "VmRSS")
        sent = {id(c): 0 for c in clients}
        while True:
            flooding = [c.sock for c in clients if sent[id(c)] < FLOOD_LIMIT]
            if not flooding:
                break
            _, writable, _ = select.select([], flooding, [], STALLED)
            if not writable:
                break  # every remaining socket is stalled: the server stopped reading them all
            for client in clients:
                if client.sock in writable:
                    with contextlib.suppress(BlockingIOError):
                        sent[id(client)] += client.sock.send(pings)
        grown = memory_kib(server, "VmRSS") - before
        assert all(n < FLOOD_LIMIT for n in sent.values()), f"the server read {list(sent.values())} bytes of pings"
        assert grown < 4 * PING_FLOOD_KIB + ALLOCATOR_NOISE_KIB, f"server RSS grew by {grown} KiB"
    finally:
        for client in clients:
            client.close()
    echo_still_works(server)


def test_compressed_messages_to_an_app_that_never_reads_stop_being_read(server: RunningServer) -> None:
    """Issue 18: RSS stays bounded while a client sends compressed 1 MiB messages faster than the app reads.

    Each 1 MiB JSON message is ~80 KiB on the wire; the server stops reading once the app has
    1 MiB (or 32 messages) unread, so it holds about 2 MiB of messages plus one read.
    """
    client = RawClient(server.port, "/ws/deaf", extensions=[PerMessageDeflate()])
    try:
        accepted = client.handshake()
        assert isinstance(accepted, AcceptConnection) and accepted.extensions
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        text = json_text(MiB).encode()
        compressed = (deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        message = frame(TEXT, compressed, rsv1=True)
        client.sock.setblocking(False)
        echo_still_works(server)
        before = memory_kib(server, "VmRSS")
        sent = 0
        while sent < FLOOD_LIMIT:
            _, writable, _ = select.select([], [client.sock], [], STALLED)
            if not writable:
                break  # the server stopped reading
            with contextlib.suppress(BlockingIOError):
                sent += client.sock.send(message[sent % len(message) :])
        grown = memory_kib(server, "VmRSS") - before
        assert sent < FLOOD_LIMIT, "the server read every message"
        assert grown < 8 * 1024, f"server RSS grew by {grown} KiB after {sent // len(message)} messages"
    finally:
        client.close()
    echo_still_works(server)


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """256 MiB of zeros, deflated to 255 KiB, ending as RFC 7692 says (no empty-block tail)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)  # about 1,030:1, deflate's best
    zeros = bytes(MiB)
    body = b"".join(deflater.compress(zeros) for _ in range(256))
    return body + deflater.flush(zlib.Z_SYNC_FLUSH)[:-4]


@pytest.mark.parametrize(
    ("mount", "limit", "allowed_kib"), [("small", 1024, 4 * 1024), ("ws", 16 * MiB, 4 * 16 * 1024)]
)
def test_zip_bomb_frame_closes_with_1009_and_peak_rss_stays_near_the_limit(
    server: RunningServer, zip_bomb: bytes, mount: str, limit: int, allowed_kib: int
) -> None:
    """Peak RSS (``VmHWM``) grows by a few times ``max_message_size`` at most, not by the 256 MiB of the bomb.

    With a 1 KiB limit it does not move (measured: +0.2 MiB); with the default 16 MiB the
    inflater stops at 16 MiB (measured: +17 MiB), and a chunk under the limit may be copied a
    few times by wsproto before the next one is refused, hence 4x.  Inflating without the
    bound, as wsproto does, measured +197 MiB here.
    """
    echo_still_works(server)
    peak_before = memory_kib(server, "VmHWM")
    client = RawClient(server.port, f"/{mount}/echo", extensions=[PerMessageDeflate()])
    try:
        accepted = client.handshake()
        assert isinstance(accepted, AcceptConnection) and accepted.extensions
        # The server may close before reading the rest of the frame.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.sock.sendall(frame(BINARY, zip_bomb, rsv1=True))
        close = client.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009
        assert close.reason == f"message larger than {limit} bytes"
    finally:
        client.close()
    grown = memory_kib(server, "VmHWM") - peak_before
    assert grown < allowed_kib, f"peak RSS grew by {grown} KiB"
    echo_still_works(server)
