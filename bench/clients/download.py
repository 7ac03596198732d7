"""W3 load client: download one large response, as fast as possible or at a fixed slow rate.

A blocking socket and ``recv_into`` a reused buffer keep the client far faster than any server
under test, so the figure is the server's. ``--rate`` paces reading (bytes per second) and
``--seconds`` stops early: the slow reader whose effect on server memory W3 measures.
"""

from __future__ import annotations

import argparse
import json
import socket
import time


def read_head(sock: socket.socket) -> tuple[bytes, int, bytes]:
    """Status line, Content-Length and the body bytes that arrived with the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the response head: {data[:80]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return status, int(value), body
    raise ConnectionError(f"no Content-Length in {head[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--chunk", type=int, default=65536)
    parser.add_argument("--rate", type=float, default=0.0, help="bytes/s; 0 reads at full speed")
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (slow)")
    args = parser.parse_args()
    path = f"/download?size={args.size}&chunk={args.chunk}"
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with socket.create_connection(("127.0.0.1", args.port)) as sock:
        started = time.monotonic()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status, length, early = read_head(sock)
        received = len(early)
        if not status.startswith(b"HTTP/1.1 200") or length != args.size:
            raise SystemExit(f"unexpected response: {status!r}, Content-Length {length}")
        piece = 65536 if args.rate else len(buffer)
        while received < length:
            if args.rate:
                if time.monotonic() - started >= args.seconds:
                    break
                time.sleep(max(0.0, started + received / args.rate - time.monotonic()))
            count = sock.recv_into(view, min(piece, length - received))
            if not count:
                raise SystemExit(f"connection closed after {received} of {length} bytes")
            received += count
        elapsed = time.monotonic() - started
    print(json.dumps({"bytes": received, "seconds": elapsed, "mb_per_s": received / elapsed / 1e6}))


if __name__ == "__main__":
    main()
