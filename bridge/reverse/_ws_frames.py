"""Translate between Twisted's byte-level WebSocket protocol and ASGI ``websocket`` messages.

``twisted.web.websocket`` speaks WebSocket bytes: it writes the handshake response and frames to
the connection's transport and reads frames from ``dataReceived``.  Under an ASGI server the
server owns the socket and the framing, and the app exchanges whole messages.  ``FrameMirror``
is the client end of a WebSocket facing Twisted's server end: it decodes what Twisted writes into
``websocket.send``/``websocket.close`` messages and encodes what the ASGI server received into
(masked) client frames for Twisted to read.  It does no I/O (``_ws`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from bridge.types import Message

_END_OF_HEAD = b"\r\n\r\n"


class HandshakeRefused(Exception):
    """Twisted answered the upgrade with something other than ``101 Switching Protocols``."""


@dataclass
class Decoded:
    """What a write from Twisted amounts to."""

    #: ``websocket.send`` and ``websocket.close`` messages, in order.
    messages: list[Message] = field(default_factory=list)
    #: Payloads of pings Twisted sent: ASGI has no message for them.
    pings: list[bytes] = field(default_factory=list)


class FrameMirror:
    """The client side of the WebSocket that Twisted's protocol believes it talks to."""

    def __init__(self) -> None:
        self._head: bytes | None = b""
        self._connection = Connection(ConnectionType.CLIENT)
        self._text: list[str] = []
        self._bytes: list[bytes] = []

    def from_twisted(self, data: bytes) -> Decoded:
        """Decode bytes Twisted wrote: first the handshake response, then server frames."""
        decoded = Decoded()
        if self._head is not None:
            self._head += data
            if _END_OF_HEAD not in self._head:
                return decoded
            head, _, data = self._head.partition(_END_OF_HEAD)
            self._head = None
            status_line = head.split(b"\r\n", 1)[0]
            if status_line.split(b" ")[1:2] != [b"101"]:
                raise HandshakeRefused(status_line.decode("latin-1"))
        self._connection.receive_data(data)
        for event in self._connection.events():
            if isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    decoded.messages.append({"type": "websocket.send", "text": "".join(self._text)})
                    self._text.clear()
            elif isinstance(event, BytesMessage):
                self._bytes.append(bytes(event.data))
                if event.message_finished:
                    decoded.messages.append({"type": "websocket.send", "bytes": b"".join(self._bytes)})
                    self._bytes.clear()
            elif isinstance(event, CloseConnection):
                decoded.messages.append({"type": "websocket.close", "code": event.code, "reason": event.reason or ""})
            elif isinstance(event, Ping):
                decoded.pings.append(bytes(event.payload))
        return decoded

    def to_twisted(self, message: Message) -> bytes:
        """Encode a ``websocket.receive`` message as the client frame Twisted expects."""
        text = message.get("text")
        if text is not None:
            return self._connection.send(TextMessage(data=text))
        return self._connection.send(BytesMessage(data=message.get("bytes") or b""))
