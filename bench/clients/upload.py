"""W4 load client: upload one large body and learn when its first chunk reached the app.

The apps answer with the wall-clock time they saw the first body chunk; the client notes the
wall-clock time its request head was sent. Both clocks are this machine's, so the difference is
how long the server held the body back from the app (the whole upload, for servers that buffer).
"""

from __future__ import annotations

import argparse
import json
import socket
import time

from bench.clients.download import read_head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    block = memoryview(b"u" * (1 << 20))
    with socket.create_connection(("127.0.0.1", args.port)) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % args.size
        )
        head_sent = time.time()
        remaining = args.size
        while remaining:
            count = min(remaining, len(block))
            sock.sendall(block[:count])
            remaining -= count
        status, length, body = read_head(sock)
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                raise SystemExit(f"connection closed in the response: {status!r}")
            body += chunk
        done = time.time()
    report = json.loads(body)
    if not status.startswith(b"HTTP/1.1 200") or report["bytes"] != args.size:
        raise SystemExit(f"unexpected response: {status!r} {report}")
    print(
        json.dumps(
            {
                "bytes": args.size,
                "seconds": done - head_sent,
                "mb_per_s": args.size / (done - head_sent) / 1e6,
                "first_chunk_ms": (report["first_chunk_at"] - head_sent) * 1000,
                "app_called_ms": (report["called_at"] - head_sent) * 1000,
            }
        )
    )


if __name__ == "__main__":
    main()
