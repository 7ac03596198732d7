"""Sans-IO state machine for one ASGI WebSocket connection.

It never imports Twisted.  It owns wsproto's ``H11Handshake`` and, once the
app accepts, its frame-level ``Connection``; the glue (``bridge.websocket``)
feeds it bytes from the socket and messages from the app, and carries out the
plain actions (``bridge._ws_actions``) it returns.  Every rule of www.rst's
WebSocket part and of RFC 6455 that the server enforces lives here or in the
modules it uses (``_ws_handshake``, ``_ws_validate``, ``_ws_deflate``,
``_ws_inbox``), where it is tested with a wsproto client and no sockets
(``tests/bridge/test_websocket_cycle.py``).

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

Bytes from the socket wait in wsproto's buffer and become events (``pump``)
only while the app's queue is not backlogged and the replies they cause
(pongs, close frames) can be written; the glue stops reading meanwhile, so a
peer that floods pings and never reads gets no unbounded queue of pongs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import h11
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
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

from bridge._http_cycle import error_parts, validate_headers
from bridge._ws_actions import AcceptUpgrade, Action, AwaitPeerClose, CloseTransport, SendBytes, StartDenial
from bridge._ws_deflate import BoundedDeflate, offers_deflate
from bridge._ws_frames import message_frame
from bridge._ws_handshake import start_handshake
from bridge._ws_inbox import Inbox
from bridge._ws_validate import (
    accept_headers,
    close_code_of,
    close_reason_of,
    denial_body,
    denial_status,
    payload_of,
)
from bridge.errors import ASGIProtocolError, ClientDisconnected


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


class WebSocketCycle:
    """One WebSocket connection's ASGI conversation, handshake to close.

    :param headers: the upgrade request's headers as the HTTP server parsed
        them; wsproto validates them without a second HTTP parser seeing bytes.
    :param target: the request target, for wsproto's bookkeeping.
    :param max_message_size: an incoming message larger than this many bytes
        (after decompression, counted while it is inflated) closes the
        connection with 1009; ``None`` means no limit.
    :param per_message_deflate: accept a client's ``permessage-deflate``
        offer (RFC 7692, see ``bridge._ws_deflate``).
    :raises HandshakeError: the request is not a valid WebSocket upgrade.
    """

    def __init__(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        target: bytes,
        *,
        max_message_size: int | None,
        per_message_deflate: bool = True,
    ) -> None:
        self.phase = Phase.HANDSHAKE
        self.max_message_size = max_message_size
        self._handshake, request = start_handshake(headers, target)
        self.offered = list(request.subprotocols)
        self._deflate = per_message_deflate and offers_deflate(request.extensions)
        self._conn: Connection | None = None
        #: The permessage-deflate extension, once a client offer was accepted.
        self._agreed: BoundedDeflate | None = None
        self.inbox = Inbox(max_message_size)
        self._disconnect: dict[str, Any] | None = None
        #: Set by the glue while the transport cannot take more: pings and
        #: closes are not answered (nor read) until it clears.
        self.replies_blocked = False
        #: Frames after a parse failure cannot be trusted: stop reading them.
        self._broken = False
        self._pings = 0
        #: A keepalive ping is out and no pong has come back since.
        self.awaiting_pong = False

    # -- towards the app ------------------------------------------------------

    def next_receive(self) -> dict[str, Any] | None:
        """The next message for ``receive()``, or ``None`` to wait.

        Messages that arrived before the close come first; after them
        ``websocket.disconnect`` is returned, again on every later call.
        """
        message = self.inbox.pop()
        if message is None and self._disconnect is not None:
            return dict(self._disconnect)  # a copy each time: the app may change what it got
        return message

    @property
    def holding_back(self) -> bool:
        """Buffered bytes must wait: the app is behind, or our replies cannot be written."""
        return self.inbox.backlogged or self.replies_blocked

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
        headers = accept_headers(message.get("headers"))
        deflate = BoundedDeflate(self.max_message_size) if self._deflate else None
        extensions: list[Extension] = [deflate] if deflate is not None else []
        try:
            data = self._handshake.send(
                AcceptConnection(subprotocol=subprotocol, extra_headers=headers, extensions=extensions)
            )
        except (h11.LocalProtocolError, LocalProtocolError) as e:
            raise ASGIProtocolError(f"websocket.accept: {e}") from None
        self._conn = self._handshake.connection
        self._agreed = deflate if deflate is not None and deflate.enabled() else None
        self.phase = Phase.OPEN
        return [AcceptUpgrade(data)]

    def _send(self, message: Mapping[str, Any]) -> list[Action]:
        text, payload = payload_of(message)
        return [SendBytes(message_frame(text, payload, self._agreed))]

    def _close(self, message: Mapping[str, Any]) -> list[Action]:
        code, reason = close_code_of(message), close_reason_of(message)
        # www.rst: a close before accept means HTTP 403 and no handshake.
        handshaking = self.phase is Phase.HANDSHAKE
        actions = self._refuse(403) if handshaking else self._send_close(code, reason, wait=True)
        self._closed(code, reason)
        return actions

    def _deny_start(self, message: Mapping[str, Any]) -> list[Action]:
        status = denial_status(message.get("status"))
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
        body = denial_body(message)
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
        return self.pump()

    def pump(self) -> list[Action]:
        """Turn buffered bytes into events until they are used up or ``holding_back``.

        The glue calls it again when the hold is lifted (the app read, the
        transport drained).
        """
        conn = self._conn
        actions: list[Action] = []
        if conn is None or self._broken:
            return actions
        events = conn.events()
        while not (self._broken or self.holding_back):
            event = next(events, None)
            if event is None:
                break
            actions.extend(self._on_event(conn, event))
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
        if self.inbox.add(data, finished):
            return []
        reason = self._too_big()
        actions = self._send_close(1009, reason, wait=True)
        self._closed(1009, reason)
        return actions

    def _too_big(self) -> str:
        return f"message larger than {self.max_message_size} bytes"

    def _on_close(self, conn: Connection, event: CloseConnection) -> list[Action]:
        reason = event.reason or ""
        if conn.state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse (invalid UTF-8 -> 1007,
            # protocol errors -> 1002) as a close event without changing state;
            # the stream after it is garbage, so close without waiting.
            self._broken = True
            self.inbox.drop_partial()
            if event.code == CloseReason.MESSAGE_TOO_BIG:
                reason = self._too_big()  # the inflater refused to grow a message further
            actions = self._send_close(event.code, reason, wait=False)
            self._closed(int(event.code), close_reason_of({"reason": reason}))
            return actions
        if conn.state is ConnectionState.REMOTE_CLOSING:
            self._closed(int(event.code), reason)
            return [SendBytes(conn.send(event.response())), CloseTransport()]
        return [CloseTransport()]  # the reply to our own close frame


__all__ = ["Phase", "WebSocketCycle"]
