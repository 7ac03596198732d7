"""The sans-IO parts of the reverse WebSocket path: ``FrameMirror`` and the handshake headers."""

from __future__ import annotations

import base64

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from bridge.reverse._ws import upgrade_headers
from bridge.reverse._ws_frames import FrameMirror, HandshakeRefused

HANDSHAKE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def server_frames(*events: object) -> bytes:
    server = Connection(ConnectionType.SERVER)
    return b"".join(server.send(event) for event in events)  # type: ignore[arg-type]


def test_handshake_split_across_writes_then_frames_in_the_same_write() -> None:
    mirror = FrameMirror()
    assert mirror.from_twisted(HANDSHAKE[:10]).messages == []
    decoded = mirror.from_twisted(HANDSHAKE[10:] + server_frames(TextMessage("hi"), BytesMessage(b"\x00")))
    assert decoded.messages == [{"type": "websocket.send", "text": "hi"}, {"type": "websocket.send", "bytes": b"\x00"}]


def test_a_refused_handshake_is_an_error() -> None:
    with pytest.raises(HandshakeRefused) as refused:
        FrameMirror().from_twisted(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert str(refused.value) == "HTTP/1.1 400 Bad Request"


def test_fragments_become_one_message() -> None:
    server = Connection(ConnectionType.SERVER)
    mirror = FrameMirror()
    mirror.from_twisted(HANDSHAKE)
    assert mirror.from_twisted(server.send(TextMessage("frag", message_finished=False))).messages == []
    assert mirror.from_twisted(server.send(TextMessage("ment"))).messages == [
        {"type": "websocket.send", "text": "fragment"}
    ]


def test_close_and_ping() -> None:
    mirror = FrameMirror()
    mirror.from_twisted(HANDSHAKE)
    decoded = mirror.from_twisted(server_frames(Ping(b"p"), CloseConnection(4001, "bye")))
    assert decoded.pings == [b"p"]
    assert decoded.messages == [{"type": "websocket.close", "code": 4001, "reason": "bye"}]


def test_received_messages_become_masked_client_frames() -> None:
    server = Connection(ConnectionType.SERVER)
    mirror = FrameMirror()
    server.receive_data(
        mirror.to_twisted({"type": "websocket.receive", "text": "é"})
        + mirror.to_twisted({"type": "websocket.receive", "bytes": b"\x01"})
    )
    events = list(server.events())
    assert [(type(e).__name__, e.data) for e in events] == [("TextMessage", "é"), ("BytesMessage", b"\x01")]  # type: ignore[attr-defined]


def test_handshake_headers_are_completed_for_servers_that_leave_them_out() -> None:
    """A WebSocket over HTTP/2 (RFC 8441) has no Upgrade or key for Twisted's handshake to check."""
    h2_scope = {"headers": [(b"Host", b"example"), (b"sec-websocket-version", b"13")]}
    headers = dict(upgrade_headers(h2_scope))
    assert (headers[b"host"], headers[b"upgrade"], headers[b"connection"]) == (b"example", b"websocket", b"Upgrade")
    assert headers[b"sec-websocket-version"] == b"13"
    assert len(base64.b64decode(headers[b"sec-websocket-key"])) == 16
    h1_scope = {"headers": [(b"upgrade", b"websocket"), (b"connection", b"upgrade"), (b"sec-websocket-key", b"k")]}
    assert upgrade_headers(h1_scope)[:3] == h1_scope["headers"]
    assert len(upgrade_headers(h1_scope)) == 4  # only the version was missing
