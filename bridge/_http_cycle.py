"""Sans-IO state machine for one ASGI HTTP request/response cycle.

It never imports Twisted.  The glue feeds it plain events -- body bytes from
the client, ASGI messages from the app, "the client left", "the app returned
or raised" -- and carries out the plain actions it returns.  Keeping the
decisions here (which status, when to abort, what to drop) makes them
testable with plain objects, like h11's ``_state.py``.

Response states, and why each exists:

* ``AWAITING_START``: nothing sent; an app failure can still become a 500.
* ``HEADERS_HELD``: ``http.response.start`` validated but not written.
  www.rst lets us hold it until the first body so a failure in between
  can still be replaced by a clean 500.
* ``STREAMING``: the status line is on the wire; failures can only abort.
* ``DONE``: response complete; later messages are ignored, nothing is written.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from bridge.errors import ASGIProtocolError

# RFC 9110 token characters, for header names.
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_VALUE_BYTES = frozenset(b"\r\n\x00")
# Framing is the server's job (www.rst: "the server must ignore it").
_SERVER_OWNED = frozenset({b"transfer-encoding"})
_NO_BODY_STATUSES = frozenset({204, 304})


class ResponseState(enum.Enum):
    AWAITING_START = enum.auto()
    HEADERS_HELD = enum.auto()
    STREAMING = enum.auto()
    DONE = enum.auto()


# ---- actions: what the I/O side must do -------------------------------------


@dataclass(frozen=True, slots=True)
class StartResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    #: The app asked for ``connection: close``; the transport must honour it.
    close: bool = False


@dataclass(frozen=True, slots=True)
class WriteBody:
    data: bytes


@dataclass(frozen=True, slots=True)
class SendFile:
    path: str


@dataclass(frozen=True, slots=True)
class FinishResponse:
    #: The body fell short of the declared Content-Length: close afterwards
    #: so the client cannot mistake what follows for the rest of the body.
    close: bool = False


@dataclass(frozen=True, slots=True)
class AbortConnection:
    """Close without completing the framing: the client sees a truncated response."""

    reason: str


Action = StartResponse | WriteBody | SendFile | FinishResponse | AbortConnection


def error_parts(
    status: int, extra_headers: Sequence[tuple[bytes, bytes]] = ()
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of a server-chosen error: generic, details belong in the log only."""
    body = f"{HTTPStatus(status).phrase}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
        *extra_headers,
    ]
    return headers, body


def error_response(status: int = 500, extra_headers: Sequence[tuple[bytes, bytes]] = ()) -> list[Action]:
    """The actions that answer ``status`` with ``error_parts`` and close."""
    headers, body = error_parts(status, extra_headers)
    return [StartResponse(status, headers, close=True), WriteBody(body), FinishResponse(close=True)]


# ---- validation -------------------------------------------------------------


def validate_headers(raw: Any, where: str) -> list[tuple[bytes, bytes]]:
    """Check app-supplied headers; Twisted would silently encode str and fold CR/LF."""
    if raw is None:
        return []
    headers: list[tuple[bytes, bytes]] = []
    try:
        items = list(raw)
    except TypeError:
        raise ASGIProtocolError(f"{where}: headers must be an iterable of pairs") from None
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise ASGIProtocolError(f"{where}: header {item!r} is not a (name, value) pair") from None
        if type(name) is not bytes or type(value) is not bytes:
            raise ASGIProtocolError(f"{where}: header names and values must be bytes, got {item!r}")
        if not name or not _TCHAR.issuperset(name):
            raise ASGIProtocolError(f"{where}: invalid header name {name!r}")
        if not _FORBIDDEN_VALUE_BYTES.isdisjoint(value):
            raise ASGIProtocolError(f"{where}: header {name!r} value contains CR, LF or NUL")
        headers.append((name.lower(), value))
    return headers


def _validate_status(status: Any) -> int:
    if type(status) is not int:
        raise ASGIProtocolError(f"http.response.start: status must be an int, got {status!r}")
    if not 200 <= status <= 599:
        raise ASGIProtocolError(f"http.response.start: status {status} is not a final status (200-599)")
    return status


def _body_of(message: Mapping[str, Any]) -> bytes:
    body = message.get("body", b"")
    if type(body) is not bytes:
        if isinstance(body, bytearray | memoryview):
            return bytes(body)
        raise ASGIProtocolError(f"http.response.body: body must be bytes, got {type(body).__name__}")
    return body


# ---- the cycle --------------------------------------------------------------


class HTTPCycle:
    """One request's ASGI conversation, from the first byte to the last.

    ``pathsend`` says whether ``http.response.pathsend`` was advertised; any
    message type not advertised is unknown and raises.
    """

    __slots__ = (
        "_declared_length",
        "_final_delivered",
        "_held",
        "_request_body",
        "_sent",
        "_suppress_body",
        "body_complete",
        "buffered",
        "client_gone",
        "head",
        "pathsend",
        "state",
    )

    def __init__(self, method: str, *, pathsend: bool = True) -> None:
        self.head = method == "HEAD"
        self.pathsend = pathsend
        self.state = ResponseState.AWAITING_START
        self.client_gone = False
        self._held: StartResponse | None = None
        self._suppress_body = self.head
        self._declared_length: int | None = None
        self._sent = 0
        # Request side.
        # One bytearray however the client sliced the body: what is held costs
        # what it weighs, not a bytes object per two-byte chunk.
        self._request_body = bytearray()
        self.buffered = 0
        self.body_complete = False
        self._final_delivered = False

    @property
    def declared_length(self) -> int | None:
        """The app's ``content-length``, once ``http.response.start`` gave one."""
        return self._declared_length

    # -- request side ---------------------------------------------------------

    def body_received(self, data: bytes) -> None:
        if data:
            self._request_body += data
            self.buffered += len(data)

    def body_finished(self) -> None:
        self.body_complete = True

    def client_disconnected(self) -> None:
        self.client_gone = True

    def next_receive(self) -> dict[str, Any] | None:
        """The next message for ``receive()``, or ``None`` to wait for an event.

        After the final ``http.request``, ``receive()`` blocks until the
        response is done or the client leaves (asgiref#533, DE FACTO).
        """
        if self.client_gone:
            return {"type": "http.disconnect"}
        if self.buffered:
            body = bytes(self._request_body)
            self._request_body.clear()
            self.buffered = 0
            more = not self.body_complete
            self._final_delivered = not more
            return {"type": "http.request", "body": body, "more_body": more}
        if self.body_complete and not self._final_delivered:
            self._final_delivered = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.state is ResponseState.DONE:
            return {"type": "http.disconnect"}
        return None

    # -- response side --------------------------------------------------------

    def app_send(self, message: Mapping[str, Any]) -> list[Action]:
        """Validate one message from the app and return what to do about it."""
        kind = message.get("type")
        if kind == "http.response.start":
            return self._start(message)
        if kind == "http.response.body":
            return self._body(message)
        if kind == "http.response.pathsend" and self.pathsend:
            return self._pathsend(message)
        raise ASGIProtocolError(f"unknown or unadvertised message type {kind!r}")

    def _start(self, message: Mapping[str, Any]) -> list[Action]:
        if self.state is not ResponseState.AWAITING_START:
            raise ASGIProtocolError(f"http.response.start sent twice (state {self.state.name})")
        if message.get("trailers"):
            raise ASGIProtocolError("http.response.start: trailers=True but the trailers extension is not offered")
        status = _validate_status(message.get("status"))
        headers = validate_headers(message.get("headers"), "http.response.start")
        close = False
        kept: list[tuple[bytes, bytes]] = []
        for name, value in headers:
            if name in _SERVER_OWNED:
                continue
            if name == b"content-length":
                if not value.isdigit() or (self._declared_length is not None and int(value) != self._declared_length):
                    raise ASGIProtocolError(f"http.response.start: invalid content-length {value!r}")
                if self._declared_length is not None:
                    continue  # an identical duplicate: send it once
                self._declared_length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
            kept.append((name, value))
        if status in _NO_BODY_STATUSES:
            self._suppress_body = True
        self._held = StartResponse(status, kept, close)
        self.state = ResponseState.HEADERS_HELD
        return []

    def _release_headers(self, actions: list[Action], whole_body: bytes | None = None) -> None:
        """Emit the held start; with the whole body known, frame it by length."""
        held = self._held
        if held is not None:
            if whole_body is not None and self._declared_length is None and not self._suppress_body:
                held.headers.append((b"content-length", b"%d" % len(whole_body)))
            actions.append(held)
            self._held = None
        self.state = ResponseState.STREAMING

    def _body(self, message: Mapping[str, Any]) -> list[Action]:
        if self.state is ResponseState.AWAITING_START:
            raise ASGIProtocolError("http.response.body sent before http.response.start")
        body = _body_of(message)
        more = bool(message.get("more_body", False))
        if self.state is ResponseState.DONE:
            return []  # www.rst: "any further messages on the channel will be ignored"
        send_bytes = bool(body) and not self._suppress_body
        if send_bytes and self._declared_length is not None and self._sent + len(body) > self._declared_length:
            # Never put more on the wire than declared: it would desync
            # keep-alive.  The state stays, so the failure path decides.
            raise ASGIProtocolError(
                f"http.response.body: {self._sent + len(body)} bytes exceed content-length {self._declared_length}"
            )
        actions: list[Action] = []
        first = self._held is not None
        self._release_headers(actions, None if more else body)
        if send_bytes:
            self._sent += len(body)
            actions.append(WriteBody(body))
        elif first and more:
            # An empty first chunk still puts the headers on the wire: event
            # streams send them before their first event.
            actions.append(WriteBody(b""))
        if not more:
            actions.append(self._finish())
        return actions

    def _pathsend(self, message: Mapping[str, Any]) -> list[Action]:
        if self.state is not ResponseState.HEADERS_HELD:
            raise ASGIProtocolError(
                f"http.response.pathsend must directly follow http.response.start (state {self.state.name})"
            )
        path = message.get("path")
        if type(path) is not str or not path.startswith("/"):
            raise ASGIProtocolError(f"http.response.pathsend: path must be an absolute str, got {path!r}")
        actions: list[Action] = []
        self._release_headers(actions)
        self.state = ResponseState.DONE
        if self._suppress_body:
            actions.append(FinishResponse())
        else:
            actions.append(SendFile(path))
        return actions

    def _finish(self) -> FinishResponse:
        self.state = ResponseState.DONE
        short = not self._suppress_body and self._declared_length is not None and self._sent < self._declared_length
        return FinishResponse(close=short)

    # -- endings --------------------------------------------------------------

    def app_failed(self, reason: str) -> list[Action]:
        """The app raised, returned early or broke the protocol: decide the outcome."""
        if self.client_gone:
            self.state = ResponseState.DONE
            return []
        if self.state in (ResponseState.AWAITING_START, ResponseState.HEADERS_HELD):
            self.state = ResponseState.DONE
            self._held = None
            return error_response(500)
        if self.state is ResponseState.STREAMING:
            self.state = ResponseState.DONE
            return [AbortConnection(reason)]
        return []

    def app_returned(self) -> list[Action]:
        """The app's coroutine finished normally."""
        if self.state is ResponseState.DONE or self.client_gone:
            self.state = ResponseState.DONE
            return []
        if self.state is ResponseState.STREAMING:
            return self.app_failed("app returned before completing the response body")
        return self.app_failed("app returned without sending a response")

    def reject(self, status: int, extra_headers: Sequence[tuple[bytes, bytes]] = ()) -> list[Action]:
        """Answer ``status`` (413, 503, 504) if nothing was sent yet, else abort."""
        if self.state in (ResponseState.AWAITING_START, ResponseState.HEADERS_HELD):
            self.state = ResponseState.DONE
            self._held = None
            return error_response(status, extra_headers)
        if self.state is ResponseState.STREAMING:
            self.state = ResponseState.DONE
            return [AbortConnection(f"request rejected with {status} after the response started")]
        return []


__all__ = [
    "AbortConnection",
    "Action",
    "FinishResponse",
    "HTTPCycle",
    "ResponseState",
    "SendFile",
    "StartResponse",
    "WriteBody",
    "error_parts",
    "error_response",
    "validate_headers",
]
