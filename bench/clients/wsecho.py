"""W5 load client: WebSocket connections that each echo one text message at a time.

A hand-rolled client on ``asyncio.Protocol``: the request frame is built once (masked with a
zero key, which RFC 6455 allows) and replies are parsed with a few slices, so one client core
outruns every server under test and the count is the server's.

``--deflate`` offers ``permessage-deflate; client_no_context_takeover`` (RFC 7692): every
message is then compressed on its own, so the compressed frame is built once too, and the
client spends no CPU compressing.  Replies are checked in full only for each connection's first
message (a server that keeps its compression context makes later replies depend on earlier
ones; inflating them all would make the client the bottleneck); later ones are counted.
``--json`` sends compressible JSON of ``--size`` bytes (any size) instead of ``m`` repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import time
import zlib

TEXT = 0x1
CLOSE = 0x8
FIN = 0x80
RSV1 = 0x40
OFFER = "permessage-deflate; client_no_context_takeover"


def json_message(size: int) -> bytes:
    """Compressible JSON of exactly ``size`` bytes (cut or padded with spaces)."""
    items = [{"id": i, "name": f"item-{i}", "tags": ["a", "b"], "ok": True} for i in range(size // 50 + 1)]
    return json.dumps(items).encode()[:size].ljust(size)


def deflate(message: bytes) -> bytes:
    """One message compressed on its own, without the empty-block tail (RFC 7692 7.2.1)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def text_frame(payload: bytes, compressed: bool) -> bytes:
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    elif n < 1 << 16:
        length = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        length = bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return bytes([FIN | (RSV1 if compressed else 0) | TEXT]) + length + b"\0\0\0\0" + payload


class Echo(asyncio.Protocol):
    """One connection: handshake, then send, wait for the echo, send again."""

    def __init__(self, port: int, message: bytes, deflated: bytes | None, stats: dict[str, int]) -> None:
        self.port = port
        self.message = message
        self.offer = deflated is not None
        self.plain_frame = text_frame(message, False)
        self.deflated_frame = text_frame(deflated, True) if deflated is not None else b""
        self.frame = self.plain_frame
        self.stats = stats
        self.buffer = bytearray()
        self.parts: list[bytes] = []
        self.compressed = False
        self.checked = False
        self.negotiated = ""
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = f"Sec-WebSocket-Extensions: {OFFER}\r\n" if self.offer else ""
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{extensions}"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, rest = bytes(self.buffer).partition(b"\r\n\r\n")
            if not found:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.fail(f"handshake refused: {head[:80]!r}")
                return
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-extensions":
                    self.negotiated = value.strip().decode()
            if self.negotiated.startswith("permessage-deflate"):
                self.frame = self.deflated_frame
            self.upgraded = True
            self.buffer = bytearray(rest)
            self.ready.set_result(None)
            self.send()
        self.parse_frames()

    def parse_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, length = buffer[0], buffer[1] & 0x7F
            start = 2 + {126: 2, 127: 8}.get(length, 0)
            if length >= 126:
                if len(buffer) < start:
                    return
                length = int.from_bytes(buffer[2:start], "big")
            if len(buffer) < start + length:
                return
            opcode = first & 0x0F
            if opcode == CLOSE:
                self.fail(f"server closed: {bytes(buffer[start : start + length])!r}")
                return
            if opcode == TEXT:
                self.compressed = bool(first & RSV1)
            if not self.checked:
                self.parts.append(bytes(buffer[start : start + length]))
            del buffer[: start + length]
            if first & FIN and opcode in (TEXT, 0x0):
                self.message_done()

    def message_done(self) -> None:
        if not self.checked:
            payload = b"".join(self.parts)
            self.parts = []
            if (inflate(payload) if self.compressed else payload) != self.message:
                self.fail(f"wrong echo: {payload[:40]!r}")
                return
            self.checked = True
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
    message = json_message(args.size) if args.json else b"m" * args.size
    deflated = deflate(message) if args.deflate else None
    protocols = []
    for _ in range(args.connections):
        _, protocol = await loop.create_connection(
            lambda: Echo(args.port, message, deflated, stats), "127.0.0.1", args.port
        )
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
        "mb_per_s": (last - first) * len(message) / elapsed / 1e6,
        "all_messages": stats["messages"],
        "errors": stats["errors"],
        "negotiated": protocols[0].negotiated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="send compressible JSON of --size bytes")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.size < 1:
        parser.error("--size must be at least 1")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
