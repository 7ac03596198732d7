"""Thousands of raw HTTP/1.1 clients on one asyncio loop (no threads): send, hold, read or abandon."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from dataclasses import dataclass

#: Connections opened at once; more would only overflow the listen backlog and wait for SYN retries.
CONNECTING = 500


@dataclass
class Client:
    path: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def abandon(self, rst: bool) -> None:
        """Leave: a FIN, or a reset as a crashed client or a middlebox would send."""
        if rst:
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()


async def send_all(port: int, paths: list[str], *, close: bool = False) -> list[Client]:
    """One connection per path, each with its request sent (``Connection: close`` if asked)."""
    gate = asyncio.Semaphore(CONNECTING)
    extra = b"Connection: close\r\n" if close else b""

    async def one(path: str) -> Client:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET %s HTTP/1.1\r\nHost: crowd\r\n%s\r\n" % (path.encode(), extra))
        await writer.drain()
        return Client(path, reader, writer)

    return await asyncio.gather(*(one(path) for path in paths))


async def abandon_at_random(clients: list[Client], rng: random.Random, within: float) -> None:
    """Every client leaves at a random moment within ``within`` seconds, half of them with a reset."""
    loop = asyncio.get_running_loop()
    left = loop.create_future()
    remaining = len(clients)

    def leave(client: Client, rst: bool) -> None:
        nonlocal remaining
        client.abandon(rst)
        remaining -= 1
        if not remaining:
            left.set_result(None)

    for client in clients:
        loop.call_later(rng.uniform(0, within), leave, client, rng.random() < 0.5)
    await left


async def read_to_end(client: Client) -> bytes:
    """The whole reply of a ``Connection: close`` request (the server closes when done)."""
    data = await client.reader.read()
    client.writer.close()
    return data
