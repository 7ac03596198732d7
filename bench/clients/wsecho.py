"""W5 load client: WebSocket connections that each echo one small text message at a time.

A hand-rolled client on ``asyncio.Protocol``: the request frame is built once (masked with a
zero key, which RFC 6455 allows) and replies are parsed with a few slices, so one client core
outruns every server under test and the count is the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time

TEXT = 0x1
CLOSE = 0x8


class Echo(asyncio.Protocol):
    """One connection: handshake, then send, wait for the echo, send again."""

    def __init__(self, port: int, message: bytes, stats: dict[str, int]) -> None:
        self.port = port
        self.message = message
        self.frame = bytes([0x80 | TEXT, 0x80 | len(message)]) + b"\0\0\0\0" + message
        self.stats = stats
        self.buffer = b""
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.fail(f"handshake refused: {head[:80]!r}")
                return
            self.upgraded = True
            self.buffer = rest
            self.ready.set_result(None)
            self.send()
        self.parse_frames()

    def parse_frames(self) -> None:
        while len(self.buffer) >= 2:
            opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            start = 2 + {126: 2, 127: 8}.get(length, 0)
            if length >= 126:
                length = int.from_bytes(self.buffer[2:start], "big")
            if len(self.buffer) < start + length:
                return
            payload = self.buffer[start : start + length]
            self.buffer = self.buffer[start + length :]
            if opcode == CLOSE:
                self.fail(f"server closed: {payload!r}")
                return
            if opcode == TEXT:
                if payload != self.message:
                    self.fail(f"wrong echo: {payload[:40]!r}")
                    return
                self.stats["messages"] += 1
                self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.transport.write(self.frame)

    def fail(self, reason: str) -> None:
        self.stats["errors"] += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        assert self.transport is not None
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc!r}"))


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    stats = {"messages": 0, "errors": 0}
    message = b"m" * args.size
    protocols = []
    for _ in range(args.connections):
        _, protocol = await loop.create_connection(lambda: Echo(args.port, message, stats), "127.0.0.1", args.port)
        protocols.append(protocol)
    await asyncio.wait_for(asyncio.gather(*(p.ready for p in protocols)), 30)
    await asyncio.sleep(args.warmup)
    first, started = stats["messages"], time.monotonic()
    await asyncio.sleep(args.seconds)
    last, elapsed = stats["messages"], time.monotonic() - started
    for protocol in protocols:
        assert protocol.transport is not None
        protocol.transport.abort()
    return {
        "messages": last - first,
        "seconds": elapsed,
        "per_s": (last - first) / elapsed,
        "all_messages": stats["messages"],
        "errors": stats["errors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if not 0 < args.size < 126:
        parser.error("--size must fit a one-byte frame length (1-125)")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
