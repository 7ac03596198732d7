"""Raw HTTP/1.1 over a socket: send exact bytes, read until the server closes, say how it closed."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

#: How long a test waits for the server to answer or close (a bound, not an expectation).
PATIENCE = 10.0


@dataclass
class Reply:
    """Everything the server sent, and whether it closed the connection (FIN or reset)."""

    data: bytes
    closed: bool

    @property
    def status(self) -> int | None:
        """The first response's status code, or None if nothing came."""
        if not self.data.startswith(b"HTTP/1."):
            return None
        return int(self.data.split(b" ", 2)[1])

    @property
    def head(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[0]

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]

    def header(self, name: bytes) -> bytes | None:
        """The first response's header ``name`` (any case), or None."""
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)


def read_until_closed(sock: socket.socket) -> Reply:
    """Read until the server closes; a socket timeout means it kept the connection open."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        return Reply(b"".join(chunks), closed=False)
    except ConnectionResetError:
        pass
    return Reply(b"".join(chunks), closed=True)


def exchange(port: int, request: bytes) -> Reply:
    """Send ``request`` on a new connection and read until the server closes it."""
    with connect(port) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of a FIN, as a crashed client or a middlebox does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
