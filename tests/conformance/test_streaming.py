"""Streaming proofs over real sockets, with the server's memory measured from /proc.

* A 200 MB upload the app consumes as it arrives, and a 100 MB download to a
  client that reads at about 1 MB/s for a few seconds: in both the server's
  resident memory grows by less than 20 MB (``memory.MAX_GROWTH``).
* An app that stops reading stalls the upload: the bytes the server has
  taken off the socket stop growing while the client's non-blocking send
  keeps failing, instead of the server buffering the body.
"""

from __future__ import annotations

import fcntl
import hashlib
import select
import socket
import struct
import termios
import time
import uuid
from pathlib import Path

from tests.conformance import wire
from tests.conformance.fronts import Front
from tests.conformance.memory import MAX_GROWTH, MB, watch_rss
from tests.conformance.rawhttp import Connection
from tests.conformance.script import gate, probe_headers, receive_body, stream

UPLOAD = 200 * MB
DOWNLOAD_CHUNK, DOWNLOAD_CHUNKS = 64 * 1024, 1600  # 100 MB
SLOW_RATE = 1 * MB  # bytes per second
SLOW_SECONDS = 3.0
#: Kernel socket buffers on loopback (the server's send buffer autotunes to ~4 MB).
SOCKET_SLACK = 8 * MB


def test_200mb_upload_is_consumed_as_it_arrives(front: Front) -> None:
    """The app sees the body while it is still arriving; server memory stays flat for 200 MB."""
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256()
    rid = f"up200-{uuid.uuid4().hex}"
    with Connection(front) as conn:
        conn.request("POST", "/up200", {**probe_headers(rid), "Content-Length": str(UPLOAD)})
        with watch_rss(front.server) as rss:
            for i in range(UPLOAD // len(block)):
                conn.send(block)
                digest.update(block)
                if i == UPLOAD // len(block) // 2:
                    halfway = front.record(rid)
                    assert halfway["received_bytes"] > 0 and not halfway["done"]
            record = wire.loads(conn.read_response().body)
    assert record["received_bytes"] == UPLOAD
    assert record["steps"][0]["sha256"] == digest.hexdigest()
    assert rss.growth < MAX_GROWTH, rss.describe()


def test_100mb_download_to_a_slow_reader(front: Front) -> None:
    """A client reading at ~1 MB/s holds the app back (send() waits); memory stays flat; all 100 MB arrive."""
    rid = f"down100-{uuid.uuid4().hex}"
    total = DOWNLOAD_CHUNK * DOWNLOAD_CHUNKS
    with Connection(front, rcvbuf=64 * 1024) as conn:
        conn.request("GET", "/down100", probe_headers(rid, receive_body(), stream(DOWNLOAD_CHUNK, DOWNLOAD_CHUNKS)))
        with watch_rss(front.server) as rss:
            head = conn.read_head()
            assert head.value("content-length") == str(total).encode()
            got = 0
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < SLOW_SECONDS:
                # Traffic shaping, not synchronisation: stay under SLOW_RATE.
                time.sleep(max(0.0, got / SLOW_RATE - elapsed))
                got += len(conn.read_some(16 * 1024))
            produced = front.record(rid)["sent_chunks"] * DOWNLOAD_CHUNK
            read_slowly = got
            while got < total and (chunk := conn.read_some(min(MB, total - got))):
                got += len(chunk)
    assert got == total
    # While the client was slow the app produced what the client read plus what
    # the socket buffers hold -- not the whole response queued in the server.
    assert produced <= read_slowly + SOCKET_SLACK, f"the app sent {produced} bytes; the client had read {read_slowly}"
    assert rss.growth < MAX_GROWTH, rss.describe()


# -- an app that stops reading stalls the upload ----------------------------------------------

#: How long the client's socket must stay unwritable to count as stalled.  This is
#: the one place a test waits for something *not* to happen; nothing is timed.
STALL_WINDOW = 1.0
#: An upload the server keeps accepting past this much is being buffered.
GIVE_UP = 64 * MB
#: What the server may hold between the socket and the app (bridge: 256 KiB high water).
MAX_HELD = 2 * MB
SIOCOUTQ = termios.TIOCOUTQ


def unsent(sock: socket.socket) -> int:
    """Bytes in our socket's send queue not yet taken by the peer's kernel."""
    value: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]
    return value


def unread_by_server(server_port: int, client_port: int) -> int:
    """Bytes waiting in the server's socket receive queue (from /proc/net/tcp)."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no server socket {local} <- {remote} in /proc/net/tcp")


def push_until_stalled(sock: socket.socket) -> int:
    """Send until the socket stays unwritable for STALL_WINDOW; return the bytes sent."""
    block = b"u" * (256 * 1024)
    sent = 0
    while sent < GIVE_UP:
        try:
            sent += sock.send(block)
        except BlockingIOError:
            _, writable, _ = select.select([], [sock], [], STALL_WINDOW)
            if not writable:
                return sent
    raise AssertionError(f"the server accepted {sent} bytes of an upload the app is not reading")


def test_upload_stalls_when_the_app_stops_reading(front: Front) -> None:
    """Backpressure: once the app stops calling receive(), the server stops taking bytes off the socket."""
    rid = f"stall-{uuid.uuid4().hex}"
    with Connection(front) as conn:
        try:
            conn.request(
                "POST",
                "/stall",
                {**probe_headers(rid, receive_body(until=MB), gate(rid)), "Content-Length": str(GIVE_UP * 16)},
            )
            conn.sock.setblocking(False)
            sent = push_until_stalled(conn.sock)
            counted = front.wait_gate(rid, rid)["received_bytes"]

            def accepted() -> int:
                return sent - unsent(conn.sock) - unread_by_server(front.port, conn.local_port)

            before = accepted()
            _, writable, _ = select.select([], [conn.sock], [], STALL_WINDOW)
            assert not writable, "the server resumed reading an upload nobody consumes"
            assert accepted() == before, "bytes accepted by the server kept growing"
            assert before - counted <= MAX_HELD, f"the server holds {before - counted} bytes the app never asked for"
        finally:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            front.release(rid)
