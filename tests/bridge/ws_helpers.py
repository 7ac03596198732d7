"""Clients for the WebSocket tests: the instrumented app's log, and wsproto on a raw socket.

The ``websockets`` library hides fragmentation, pings and malformed frames; ``RawClient``
shows them.  Every read has a socket timeout, so a test fails instead of hanging.
"""

from __future__ import annotations

import socket
import uuid
from collections import deque
from typing import Any

import h11
import httpx
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Event, RejectConnection, Request
from wsproto.extensions import Extension

TIMEOUT = 30.0


def new_id() -> str:
    return uuid.uuid4().hex


def app_log(url: str, conn_id: str, until: str = "end", mount: str = "ws") -> list[dict[str, Any]]:
    """What the app saw on connection ``conn_id``, once ``until`` (or ``end``) was recorded."""
    r = httpx.get(f"{url}/{mount}/log", params={"id": conn_id, "until": until}, timeout=TIMEOUT + 10)
    r.raise_for_status()
    events: list[dict[str, Any]] = r.json()
    return events


def received(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["message"] for e in events if e["event"] == "receive"]


def send_errors(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["type"], e["error"]) for e in events if e["event"] == "send"]


class RawClient:
    """A WebSocket client made of a socket and wsproto, for wire-level checks."""

    def __init__(
        self,
        port: int,
        target: str,
        *,
        subprotocols: list[str] | None = None,
        rcvbuf: int | None = None,
        extensions: list[Extension] | None = None,
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: deque[Event] = deque()
        self.eof = False
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=f"127.0.0.1:{port}",
                    target=target,
                    subprotocols=subprotocols or [],
                    extensions=extensions or [],
                )
            )
        )

    def handshake(self) -> Event:
        event = self.next_event()
        assert isinstance(event, AcceptConnection | RejectConnection), event
        return event

    def next_event(self) -> Event:
        while not self._events:
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                raise EOFError("server closed the connection")
            self.ws.receive_data(data)
            self._events.extend(self.ws.events())
        return self._events.popleft()

    def send(self, event: Event) -> None:
        self.sock.sendall(self.ws.send(event))

    def read_to_eof(self) -> bytes:
        """Everything until the server closes (what follows the events read so far)."""
        chunks = []
        while data := self.sock.recv(65536):
            chunks.append(data)
        self.eof = True
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def raw_http(port: int, request: bytes) -> tuple[h11.Response, bytes, bool]:
    """Send ``request`` and parse the one response; also report whether the server then closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))  # mirror our request's state
        conn.send(h11.EndOfMessage())
        response: h11.Response | None = None
        body = b""
        closed = False
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = sock.recv(65536)
                closed = not data
                conn.receive_data(data)
                continue
            if isinstance(event, h11.InformationalResponse):
                raise AssertionError(f"got an informational response: {event}")
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        while not closed:
            data = sock.recv(65536)
            closed = not data
            assert closed, f"unexpected bytes after the response: {data!r}"
    assert response is not None
    return response, body, closed


def upgrade_request(port: int, target: str, **overrides: bytes | None) -> bytes:
    """A hand-written upgrade request; ``overrides`` replace (or, with None, drop) headers."""
    headers = {
        b"Host": f"127.0.0.1:{port}".encode(),
        b"Upgrade": b"websocket",
        b"Connection": b"Upgrade",
        b"Sec-WebSocket-Key": b"dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version": b"13",
    }
    for name, value in overrides.items():
        key = name.replace("_", "-").encode()
        match = next((k for k in headers if k.lower() == key.lower()), key)
        if value is None:
            headers.pop(match, None)
        else:
            headers[match] = value
    lines = [b"GET " + target.encode() + b" HTTP/1.1"] + [k + b": " + v for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"
