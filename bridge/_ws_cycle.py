"""Sans-IO state machine for one ASGI WebSocket connection.

It never imports Twisted.  It owns wsproto's ``H11Handshake`` and, once the
app accepts, its frame-level ``Connection``; the glue (``bridge.websocket``)
feeds it bytes from the socket and messages from the app, and carries out the
plain actions it returns.  Every rule of www.rst's WebSocket part and of
RFC 6455 that the server enforces lives here, where it is tested with a
wsproto client and no sockets (``tests/bridge/test_websocket_cycle.py``).

App-side phases, and why each exists:

* ``HANDSHAKE``: ``websocket.connect`` is queued and nothing is on the wire;
  the handshake waits for the app (www.rst: "not complete the handshake until
  it gets a reply").  An app failure here can still become an HTTP 500.
* ``DENYING``: the app started a denial response (``websocket.http.response``
  extension); only its body may follow.
* ``OPEN``: the 101 is out; messages flow both ways.
* ``CLOSED``: a close frame was sent or received, the denial is complete or
  the TCP connection is gone.  The app's next ``receive()`` returns
  ``websocket.disconnect``; its next ``send()`` raises ``ClientDisconnected``.

Close reasons longer than RFC 6455's 123 bytes are *truncated* at a UTF-8
character boundary rather than refused: www.rst says the reason "can be any
string", so an app that follows the spec must not fail for a long one.
Close codes that must never appear on the wire (1004-1006, 1015, and anything
outside 1000-1003, 1007-1014, 3000-4999) raise ``ASGIProtocolError``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import h11
from wsproto import ConnectionType
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from bridge._http_cycle import error_parts, validate_headers
from bridge.errors import ASGIProtocolError, ClientDisconnected

#: Close codes an app may put in a close frame (RFC 6455 section 7.4).
_APP_CLOSE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) | frozenset(range(3000, 5000))
#: A close frame's payload is at most 125 bytes: two for the code, the rest reason.
MAX_REASON_BYTES = 123
#: Headers the handshake itself owns; an app setting them would corrupt the 101.
_HANDSHAKE_HEADERS = frozenset(
    {b"sec-websocket-protocol", b"sec-websocket-accept", b"sec-websocket-extensions", b"upgrade", b"connection"}
)
#: Above this many undelivered messages or bytes the glue stops reading the
#: socket, so a client cannot fill server memory while the app is busy (the
#: same idea as the ``websockets`` library's ``max_queue``).
BACKLOG_MESSAGES = 32
BACKLOG_BYTES = 1024 * 1024


class Phase(enum.Enum):
    HANDSHAKE = enum.auto()
    DENYING = enum.auto()
    OPEN = enum.auto()
    CLOSED = enum.auto()


#: The app messages each phase accepts; a known message in CLOSED raises
#: ``ClientDisconnected``, anything else ``ASGIProtocolError``.
_ALLOWED: Mapping[Phase, frozenset[str]] = {
    Phase.HANDSHAKE: frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"}),
    Phase.DENYING: frozenset({"websocket.http.response.body"}),
    Phase.OPEN: frozenset({"websocket.send", "websocket.close"}),
    Phase.CLOSED: frozenset(),
}
_KNOWN = frozenset(kind for kinds in _ALLOWED.values() for kind in kinds)
_HANDLERS = {
    "websocket.accept": "_accept",
    "websocket.send": "_send",
    "websocket.close": "_close",
    "websocket.http.response.start": "_deny_start",
    "websocket.http.response.body": "_deny_body",
}


# ---- actions: what the I/O side must do -------------------------------------


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Write these bytes to the connection."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AcceptUpgrade:
    """Hand the connection to the WebSocket protocol, then write the 101 (``data``)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StartDenial:
    """Write the head of an HTTP response that refuses the upgrade."""

    status: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AwaitPeerClose:
    """Our close frame is out: close TCP when the peer's reply arrives, or after a timeout."""


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the connection once what was written has been flushed."""


Action = SendBytes | AcceptUpgrade | StartDenial | AwaitPeerClose | CloseTransport


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket handshake; answer ``status``.

    The message is a fixed text, safe to send to the client.
    """

    def __init__(self, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


# ---- validation -------------------------------------------------------------


def close_code_of(message: Mapping[str, Any]) -> int:
    code = message.get("code", 1000)
    if code is None:
        return 1000
    if type(code) is not int or code not in _APP_CLOSE_CODES:
        raise ASGIProtocolError(
            f"websocket.close: code {code!r} may not be sent (RFC 6455 7.4: use 1000-1003, 1007-1014 or 3000-4999)"
        )
    return code


def close_reason_of(message: Mapping[str, Any]) -> str:
    """The reason, truncated to 123 UTF-8 bytes without splitting a character."""
    reason = message.get("reason")
    if reason is None:
        return ""
    if type(reason) is not str:
        raise ASGIProtocolError(f"websocket.close: reason must be a str, got {type(reason).__name__}")
    encoded = _utf8(reason, "websocket.close: reason")
    if len(encoded) <= MAX_REASON_BYTES:
        return reason
    return encoded[:MAX_REASON_BYTES].decode("utf-8", "ignore")


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ASGIProtocolError(f"{where} is not encodable as UTF-8 (lone surrogate?)") from None


def _payload_of(message: Mapping[str, Any]) -> str | bytes:
    text, data = message.get("text"), message.get("bytes")
    if (text is None) == (data is None):
        raise ASGIProtocolError("websocket.send: exactly one of 'text' and 'bytes' must be set")
    if text is not None:
        if type(text) is not str:
            raise ASGIProtocolError(f"websocket.send: text must be a str, got {type(text).__name__}")
        _utf8(text, "websocket.send: text")
        return text
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if type(data) is not bytes:
        raise ASGIProtocolError(f"websocket.send: bytes must be bytes, got {type(data).__name__}")
    return data


def _accept_headers(raw: Any) -> list[tuple[bytes, bytes]]:
    headers = validate_headers(raw, "websocket.accept")
    for name, _ in headers:
        if name in _HANDSHAKE_HEADERS:
            hint = " (use the 'subprotocol' key)" if name == b"sec-websocket-protocol" else ""
            raise ASGIProtocolError(f"websocket.accept: header {name.decode()!r} belongs to the handshake{hint}")
    return headers


def _denial_status(status: Any) -> int:
    if type(status) is not int or not 200 <= status <= 599:
        raise ASGIProtocolError(f"websocket.http.response.start: status must be an int in 200-599, got {status!r}")
    return status


def _has_token(values: Iterable[bytes], token: bytes) -> bool:
    return any(part.strip().lower() == token for value in values for part in value.split(b","))


def _has_body(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding" or (lowered == b"content-length" and value.strip() != b"0"):
            return True
    return False


def is_upgrade_offer(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True when the headers ask to switch to WebSocket (``Upgrade`` + ``Connection: upgrade``)."""
    pairs = [(name.lower(), value) for name, value in headers]
    return _has_token((v for n, v in pairs if n == b"upgrade"), b"websocket") and _has_token(
        (v for n, v in pairs if n == b"connection"), b"upgrade"
    )


# ---- the cycle --------------------------------------------------------------


class WebSocketCycle:
    """One WebSocket connection's ASGI conversation, handshake to close.

    :param headers: the upgrade request's headers as the HTTP server parsed
        them; wsproto validates them without a second HTTP parser seeing bytes.
    :param target: the request target, for wsproto's bookkeeping.
    :param max_message_size: a reassembled incoming message larger than this
        many bytes closes the connection with 1009; ``None`` means no limit.
    :raises HandshakeError: the request is not a valid WebSocket upgrade.
    """

    def __init__(self, headers: Sequence[tuple[bytes, bytes]], target: bytes, *, max_message_size: int | None) -> None:
        self.phase = Phase.HANDSHAKE
        self.max_message_size = max_message_size
        self.offered = self._start_handshake(headers, target)
        self._conn: Connection | None = None
        self._incoming: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self._incoming_bytes = 0
        self._disconnect: dict[str, Any] | None = None
        self._parts: list[Any] = []
        self._part_bytes = 0
        #: Frames after a parse failure cannot be trusted: stop reading them.
        self._broken = False
        self._pings = 0
        #: A keepalive ping is out and no pong has come back since.
        self.awaiting_pong = False

    def _start_handshake(self, headers: Sequence[tuple[bytes, bytes]], target: bytes) -> list[str]:
        if _has_body(headers):
            raise HandshakeError(400, "a WebSocket handshake request has no body")
        self._handshake = H11Handshake(ConnectionType.SERVER)
        try:
            self._handshake.initiate_upgrade_connection(list(headers), target)
        except RemoteProtocolError as e:
            hint = e.event_hint
            if isinstance(hint, RejectConnection):
                raise HandshakeError(hint.status_code, str(e), hint.headers) from None
            raise HandshakeError(400, str(e)) from None
        except (h11.ProtocolError, UnicodeError, ValueError) as e:
            # h11 refuses a header value or target Twisted let through; the
            # details (client bytes) belong in the log, not in the answer.
            raise HandshakeError(400, "invalid header or target in the WebSocket handshake") from e
        request = next(self._handshake.events())
        assert isinstance(request, Request)
        return list(request.subprotocols)

    # -- towards the app ------------------------------------------------------

    def next_receive(self) -> dict[str, Any] | None:
        """The next message for ``receive()``, or ``None`` to wait.

        Messages that arrived before the close come first; after them
        ``websocket.disconnect`` is returned, again on every later call.
        """
        if self._incoming:
            message = self._incoming.popleft()
            self._incoming_bytes -= _size_of(message)
            return message
        return self._disconnect

    @property
    def backlogged(self) -> bool:
        """Too much is waiting for the app: the glue should stop reading."""
        return len(self._incoming) >= BACKLOG_MESSAGES or self._incoming_bytes >= BACKLOG_BYTES

    def _deliver(self, message: dict[str, Any]) -> None:
        self._incoming.append(message)
        self._incoming_bytes += _size_of(message)

    def _closed(self, code: int, reason: str) -> None:
        self.phase = Phase.CLOSED
        if self._disconnect is None:
            self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}

    # -- from the app ---------------------------------------------------------

    def app_send(self, message: Mapping[str, Any]) -> list[Action]:
        """Validate one message from the app and return what to do about it.

        :raises ASGIProtocolError: the message is invalid or out of order.
        :raises ClientDisconnected: the connection is already closed.
        """
        kind = message.get("type")
        if kind not in _KNOWN:
            raise ASGIProtocolError(f"unknown or unadvertised message type {kind!r}")
        if self.phase is Phase.CLOSED:
            raise ClientDisconnected(f"{kind} sent after the WebSocket closed")
        if kind not in _ALLOWED[self.phase]:
            raise ASGIProtocolError(f"{kind} is not allowed in phase {self.phase.name}")
        actions: list[Action] = getattr(self, _HANDLERS[kind])(message)
        return actions

    def _accept(self, message: Mapping[str, Any]) -> list[Action]:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and (type(subprotocol) is not str or subprotocol not in self.offered):
            raise ASGIProtocolError(
                f"websocket.accept: subprotocol {subprotocol!r} was not offered by the client ({self.offered})"
            )
        headers = _accept_headers(message.get("headers"))
        try:
            data = self._handshake.send(AcceptConnection(subprotocol=subprotocol, extra_headers=headers))
        except (h11.LocalProtocolError, LocalProtocolError) as e:
            raise ASGIProtocolError(f"websocket.accept: {e}") from None
        self._conn = self._handshake.connection
        self.phase = Phase.OPEN
        return [AcceptUpgrade(data)]

    def _send(self, message: Mapping[str, Any]) -> list[Action]:
        assert self._conn is not None
        payload = _payload_of(message)
        event = TextMessage(data=payload) if isinstance(payload, str) else BytesMessage(data=payload)
        return [SendBytes(self._conn.send(event))]

    def _close(self, message: Mapping[str, Any]) -> list[Action]:
        code, reason = close_code_of(message), close_reason_of(message)
        # www.rst: a close before accept means HTTP 403 and no handshake.
        handshaking = self.phase is Phase.HANDSHAKE
        actions = self._refuse(403) if handshaking else self._send_close(code, reason, wait=True)
        self._closed(code, reason)
        return actions

    def _deny_start(self, message: Mapping[str, Any]) -> list[Action]:
        status = _denial_status(message.get("status"))
        headers = validate_headers(message.get("headers"), "websocket.http.response.start")
        if not any(name == b"connection" for name, _ in headers):
            headers.append((b"connection", b"close"))  # we close after the body
        try:
            data = self._handshake.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        except (h11.LocalProtocolError, LocalProtocolError) as e:
            raise ASGIProtocolError(f"websocket.http.response.start: {e}") from None
        self.phase = Phase.DENYING
        return [StartDenial(status, data)]

    def _deny_body(self, message: Mapping[str, Any]) -> list[Action]:
        body = message.get("body", b"")
        if isinstance(body, bytearray | memoryview):
            body = bytes(body)
        if type(body) is not bytes:
            raise ASGIProtocolError(f"websocket.http.response.body: body must be bytes, got {type(body).__name__}")
        more = bool(message.get("more_body", False))
        try:
            data = self._handshake.send(RejectData(data=body, body_finished=not more))
        except (h11.LocalProtocolError, LocalProtocolError) as e:
            raise ASGIProtocolError(f"websocket.http.response.body: {e}") from None
        if more:
            return [SendBytes(data)]
        # No close frame was ever exchanged: 1006, as uvicorn reports it.
        self._closed(1006, "")
        return [SendBytes(data), CloseTransport()]

    def _refuse(self, status: int) -> list[Action]:
        headers, body = error_parts(status)
        head = self._handshake.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        tail = self._handshake.send(RejectData(data=body, body_finished=True))
        return [StartDenial(status, head), SendBytes(tail), CloseTransport()]

    def _send_close(self, code: int, reason: str, *, wait: bool) -> list[Action]:
        """A close frame, unless one was already sent; then wait for the reply or just close."""
        conn = self._conn
        actions: list[Action] = []
        if conn is not None and conn.state is ConnectionState.OPEN:
            actions.append(SendBytes(conn.send(CloseConnection(code=code, reason=reason))))
        actions.append(AwaitPeerClose() if wait else CloseTransport())
        return actions

    # -- endings the app causes -----------------------------------------------

    def app_failed(self) -> list[Action]:
        """The app raised (or was cancelled): 500 before accept, 1011 after."""
        return self._app_ended(1011)

    def app_returned(self) -> list[Action]:
        """The app returned: 500 if it never answered the handshake, else close 1000."""
        return self._app_ended(1000)

    def _app_ended(self, code: int) -> list[Action]:
        if self.phase is Phase.HANDSHAKE:
            actions = self._refuse(500)
        elif self.phase is Phase.DENYING:
            actions = [CloseTransport()]  # a truncated response, never a fake-complete one
        elif self.phase is Phase.OPEN:
            actions = self._send_close(code, "", wait=True)
        else:
            return []
        self._closed(code, "")
        return actions

    # -- server-initiated endings ---------------------------------------------

    def server_close(self, code: int, reason: str) -> list[Action]:
        """The server ends the connection (e.g. 1001 when shutting down)."""
        if self.phase is Phase.HANDSHAKE:
            actions = self._refuse(503)
        elif self.phase is Phase.OPEN:
            actions = self._send_close(code, reason, wait=True)
        else:
            return []
        self._closed(code, reason)
        return actions

    def ping(self) -> list[Action]:
        """A keepalive ping, if the connection is open."""
        conn = self._conn
        if self.phase is not Phase.OPEN or conn is None or conn.state is not ConnectionState.OPEN:
            return []
        self._pings += 1
        self.awaiting_pong = True
        return [SendBytes(conn.send(Ping(payload=self._pings.to_bytes(4, "big"))))]

    def keepalive_timeout(self) -> list[Action]:
        """No pong in time: close with 1011 without waiting for a peer that does not answer."""
        if self.phase is not Phase.OPEN:
            return []
        actions = self._send_close(1011, "keepalive ping timeout", wait=False)
        self._closed(1011, "keepalive ping timeout")
        return actions

    def connection_lost(self) -> None:
        """The TCP connection is gone; without a close frame that is 1006 (RFC 6455 7.1.5)."""
        self._closed(1006, "")

    # -- from the client ------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Action]:
        """Feed bytes from the socket; returns frames to send back and closes to perform."""
        conn = self._conn
        if conn is None or self._broken or conn.state is ConnectionState.CLOSED:
            return []
        conn.receive_data(data)
        actions: list[Action] = []
        for event in conn.events():
            actions.extend(self._on_event(conn, event))
            if self._broken:
                break
        return actions

    def _on_event(self, conn: Connection, event: Event) -> list[Action]:
        if isinstance(event, TextMessage | BytesMessage):
            return self._on_data(event.data, event.message_finished)
        if isinstance(event, Ping):
            return [SendBytes(conn.send(event.response()))] if conn.state is ConnectionState.OPEN else []
        if isinstance(event, Pong):
            self.awaiting_pong = False
            return []
        if isinstance(event, CloseConnection):
            return self._on_close(conn, event)
        return []

    def _on_data(self, data: str | bytes | bytearray, finished: bool) -> list[Action]:
        if self.phase is not Phase.OPEN:
            return []  # we are closing: the peer's late messages have no reader
        self._parts.append(data)
        self._part_bytes += _utf8_length(data)
        limit = self.max_message_size
        if limit is not None and self._part_bytes > limit:
            self._parts, self._part_bytes = [], 0
            reason = f"message larger than {limit} bytes"
            actions = self._send_close(1009, reason, wait=True)
            self._closed(1009, reason)
            return actions
        if finished:
            parts, self._parts, self._part_bytes = self._parts, [], 0
            if isinstance(data, str):
                self._deliver({"type": "websocket.receive", "text": "".join(parts)})
            else:
                self._deliver({"type": "websocket.receive", "bytes": b"".join(parts)})
        return []

    def _on_close(self, conn: Connection, event: CloseConnection) -> list[Action]:
        reason = event.reason or ""
        if conn.state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse (invalid UTF-8 -> 1007,
            # protocol errors -> 1002) as a close event without changing state;
            # the stream after it is garbage, so close without waiting.
            self._broken = True
            actions = self._send_close(event.code, reason, wait=False)
            self._closed(int(event.code), close_reason_of({"reason": reason}))
            return actions
        if conn.state is ConnectionState.REMOTE_CLOSING:
            self._closed(int(event.code), reason)
            return [SendBytes(conn.send(event.response())), CloseTransport()]
        return [CloseTransport()]  # the reply to our own close frame


def _utf8_length(data: str | bytes | bytearray) -> int:
    if not isinstance(data, str):
        return len(data)
    return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))


def _size_of(message: Mapping[str, Any]) -> int:
    payload = message.get("text") or message.get("bytes") or b""
    return len(payload)


__all__ = [
    "BACKLOG_BYTES",
    "BACKLOG_MESSAGES",
    "MAX_REASON_BYTES",
    "AcceptUpgrade",
    "Action",
    "AwaitPeerClose",
    "CloseTransport",
    "HandshakeError",
    "Phase",
    "SendBytes",
    "StartDenial",
    "WebSocketCycle",
    "close_code_of",
    "close_reason_of",
    "is_upgrade_offer",
]
