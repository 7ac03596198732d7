"""W6 send() means sent: time to a response whose app then computes in a background task.

A Starlette endpoint returns ``PlainTextResponse("done", background=BackgroundTask(crunch))``;
``crunch`` computes for a second before its first await. A server whose ``send()`` returns before
the bytes left holds the response until the task yields: the client then waits the whole second.
Requests are sent one at a time on fresh connections, each after the previous task ended (the
server answers ``/hello`` again), and timed from the request to the last byte of the response.
"""

from __future__ import annotations

import socket
import statistics
import time

from bench.profiles import Profile
from bench.workloads.common import Column, Target, WorkloadError

TITLE = "W6 background task: time to the response of an app that computes after send()"
COLUMNS = [
    Column("response_ms", "time to response ms", 1, higher=False, ratio=True),
    Column("max_response_ms", "slowest ms", 1, higher=False),
]
REQUESTS = 5


def describe(profile: Profile) -> str:
    return (
        f"{REQUESTS} sequential `GET /background` on fresh connections (a 1 s CPU-bound BackgroundTask "
        "after each response), each after `GET /hello` answers again; time from sending to the last byte"
    )


def _get(port: int, path: str, timeout: float = 30.0) -> tuple[bytes, float]:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            if body and b"content-length: " in head.lower():
                length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
                if len(body) >= length:
                    break
    return received, time.perf_counter() - started


def measure(target: Target, profile: Profile) -> dict[str, float]:
    times = []
    for _ in range(REQUESTS):
        _get(target.port, "/hello")  # the previous task has ended: the server answers again
        reply, elapsed = _get(target.port, "/background")
        if not reply.endswith(b"done"):
            raise WorkloadError(f"unexpected reply: {reply[:80]!r}")
        times.append(elapsed * 1000)
    return {"response_ms": statistics.median(times), "max_response_ms": max(times)}
