"""W2 load client: many keep-alive connections, each requesting a delayed response repeatedly.

Connections open at a bounded rate (a burst of 10,000 SYNs would only measure listen backlogs),
then each one sends ``rounds`` requests back to back and times each from the moment it was sent.
The completion ratio compares what was done with the ideal of a server that adds nothing to the
delay: the sum of (completed x delay) over the sum of each connection's busy time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    busy: float = 0.0
    errors: int = 0
    timeouts: int = 0
    samples: list[str] = field(default_factory=list)
    inflight: int = 0
    peak_inflight: int = 0

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(text)


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Status line and body of one HTTP/1.1 response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status, _, rest = head.partition(b"\r\n")
    headers = {}
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"]))
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return status, body


async def connection(args: argparse.Namespace, tally: Tally, expected: bytes) -> None:
    request = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", args.port), args.timeout)
    except (OSError, TimeoutError) as exc:
        tally.error(f"connect: {exc!r}")
        return
    started = time.monotonic()
    try:
        for _ in range(args.rounds):
            sent = time.monotonic()
            tally.inflight += 1
            tally.peak_inflight = max(tally.peak_inflight, tally.inflight)
            try:
                writer.write(request)
                status, body = await asyncio.wait_for(read_response(reader), args.timeout)
            except TimeoutError:
                tally.timeouts += 1
                return
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                tally.error(f"request: {exc!r}")
                return
            finally:
                tally.inflight -= 1
            if not status.startswith(b"HTTP/1.1 200") or body != expected:
                tally.error(f"response: {status!r} {body[:60]!r}")
                return
            tally.latencies.append(time.monotonic() - sent)
    finally:
        tally.busy += time.monotonic() - started
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    from bench.servers.apps import DELAYED_BODY

    tally = Tally()
    tasks = []
    began = time.monotonic()
    per_tick = max(1, round(args.ramp_rate / 100))
    for index in range(args.connections):
        tasks.append(asyncio.create_task(connection(args, tally, DELAYED_BODY)))
        if index % per_tick == per_tick - 1:
            await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    latencies = sorted(tally.latencies)
    completed = len(latencies)
    p99 = latencies[min(completed - 1, int(completed * 0.99))] if latencies else float("nan")
    return {
        "connections": args.connections,
        "rounds": args.rounds,
        "delay": args.delay,
        "completed": completed,
        "expected": args.connections * args.rounds,
        "errors": tally.errors,
        "timeouts": tally.timeouts,
        "error_samples": tally.samples,
        "completion_ratio": completed * args.delay / tally.busy if tally.busy else 0.0,
        "p50_over_delay_ms": (statistics.median(latencies) - args.delay) * 1000 if latencies else None,
        "p99_over_delay_ms": (p99 - args.delay) * 1000 if latencies else None,
        "peak_inflight": tally.peak_inflight,
        "elapsed_s": time.monotonic() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--delay", type=float, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ramp-rate", type=float, default=2500.0, help="new connections per second")
    parser.add_argument("--timeout", type=float, default=30.0, help="per connect and per request")
    parser.add_argument("--path-prefix", default="", help="before /delayed, e.g. /twisted for `hybrid serve`")
    args = parser.parse_args()
    args.path = f"{args.path_prefix}/delayed?delay={args.delay:g}"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
