"""A deliberately small HTTP/1.x client on a raw socket, for wire-level checks.

httpx and h11 normalise exactly what some assertions are about -- header
order and case, duplicates, the framing actually used, a chunked body that
stops short, bytes after the end of a response -- so these tests read the
bytes themselves.  ``Response`` keeps headers as they came off the wire.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from tests.conformance.fronts import DEADLINE, Front

Headers = list[tuple[str, str]] | dict[str, str]


@dataclass
class Response:
    version: bytes
    status: int
    #: Header lines in wire order, names in wire case.
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    #: ``length``, ``chunked``, ``close`` (read to EOF) or ``none`` (no body allowed).
    framing: str = "none"
    #: False when the connection closed before the framing said the body ended.
    complete: bool = True
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def values(self, name: str) -> list[bytes]:
        wanted = name.lower().encode()
        return [v for n, v in self.headers if n.lower() == wanted]

    def value(self, name: str) -> bytes | None:
        values = self.values(name)
        assert len(values) <= 1, f"{name} appears {len(values)} times: {self.headers}"
        return values[0] if values else None


class Connection:
    """One client connection; requests and responses can be interleaved freely."""

    def __init__(self, front: Front, *, timeout: float = DEADLINE, rcvbuf: int | None = None) -> None:
        self.front = front
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connecting, so the advertised window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((front.host, front.port))
        self._buffer = bytearray()  # appended to in place: big bodies stay linear

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        port: int = self.sock.getsockname()[1]
        return port

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(
        self,
        method: str,
        path: str,
        headers: Headers | None = None,
        body: bytes = b"",
        *,
        version: str = "HTTP/1.1",
        target: str | None = None,
        host: bool = True,
    ) -> None:
        """Send one request for ``path`` under the front's mount (or a literal ``target``)."""
        lines = [f"{method} {target if target is not None else self.front.target(path)} {version}".encode()]
        if host:
            lines.append(f"Host: {self.front.host}:{self.front.port}".encode())
        items = headers.items() if isinstance(headers, dict) else headers or []
        for name, value in items:
            lines.append(name.encode("latin-1") + b": " + value.encode("latin-1"))
        self.send(b"\r\n".join(lines) + b"\r\n\r\n" + body)

    # -- reading ------------------------------------------------------------------

    def _fill(self, size: int = 65536) -> bool:
        data = self.sock.recv(size)
        self._buffer += data
        return bool(data)

    def read_some(self, size: int) -> bytes:
        """Up to ``size`` bytes of whatever comes next (b"" at EOF)."""
        if not self._buffer:
            self._fill(size)
        return self._take(size)

    def _read_line(self) -> bytes | None:
        while b"\r\n" not in self._buffer:
            if not self._fill():
                return None
        line = self._take(self._buffer.index(b"\r\n"))
        del self._buffer[:2]
        return line

    def _read_exactly(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            if not self._fill():
                return None
        return self._take(n)

    def read_head(self) -> Response:
        """Read a status line and headers (including 1xx interim responses)."""
        line = self._read_line()
        if line is None:
            raise ConnectionError("connection closed before a status line")
        version, status, *_ = line.split(b" ", 2)
        if version not in (b"HTTP/1.0", b"HTTP/1.1"):
            raise AssertionError(f"not a status line: {line[:80]!r}")
        headers = []
        while True:
            line = self._read_line()
            if line is None:
                raise ConnectionError("connection closed inside the response headers")
            if not line:
                break
            name, _, value = line.partition(b":")
            headers.append((name, value.strip()))
        return Response(version, int(status), headers)

    def read_response(self, method: str = "GET") -> Response:
        """Read one complete final response, framed the way its headers say."""
        response = self.read_head()
        if 100 <= response.status < 200:
            raise AssertionError(f"unexpected interim response {response.status}; use read_head()")
        if method == "HEAD" or response.status in (204, 304):
            return response
        if any(v.lower() == b"chunked" for v in response.values("transfer-encoding")):
            self._read_chunked(response)
        elif (length := response.value("content-length")) is not None:
            response.framing = "length"
            data = self._read_exactly(int(length))
            response.complete = data is not None
            response.body = data if data is not None else self._drain()
        else:
            response.framing = "close"
            response.body = self._drain()
        return response

    def _read_chunked(self, response: Response) -> None:
        response.framing = "chunked"
        chunks = []
        while True:
            line = self._read_line()
            size = int(line.split(b";")[0], 16) if line else None
            if size is None:
                response.complete = False
                break
            if size == 0:
                while (line := self._read_line()) is not None and line:
                    name, _, value = line.partition(b":")
                    response.trailers.append((name, value.strip()))
                response.complete = line is not None
                break
            data = self._read_exactly(size + 2)
            if data is None:
                chunks.append(self._drain())
                response.complete = False
                break
            chunks.append(data[:-2])
        response.body = b"".join(chunks)

    def _drain(self) -> bytes:
        """Everything until the peer closes."""
        while self._fill():
            pass
        return self._take(len(self._buffer))

    def wait_for_bytes(self, marker: bytes) -> None:
        """Read until ``marker`` has arrived (it stays unconsumed)."""
        while marker not in self._buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before {marker!r} arrived")

    def is_closed_by_peer(self) -> bool:
        """True if the server closes without sending anything more; False if bytes arrive."""
        if self._buffer:
            return False
        try:
            return not self._fill()
        except ConnectionResetError:
            return True

    @property
    def leftover(self) -> bytes:
        """Bytes received beyond the responses read so far."""
        return bytes(self._buffer)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data
