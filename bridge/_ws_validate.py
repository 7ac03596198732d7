"""Checks on what an ASGI app sends over a WebSocket: close codes and reasons, payloads, headers.

Close reasons longer than RFC 6455's 123 bytes are *truncated* at a UTF-8
character boundary rather than refused: www.rst says the reason "can be any
string", so an app that follows the spec must not fail for a long one.
Close codes that must never appear on the wire (1004-1006, 1015, and anything
outside 1000-1003, 1007-1014, 3000-4999) raise ``ASGIProtocolError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge._http_cycle import validate_headers
from bridge.errors import ASGIProtocolError

#: Close codes an app may put in a close frame (RFC 6455 section 7.4).
_APP_CLOSE_CODES = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015)) | frozenset(range(3000, 5000))
#: A close frame's payload is at most 125 bytes: two for the code, the rest reason.
MAX_REASON_BYTES = 123
#: Headers the handshake itself owns; an app setting them would corrupt the 101.
_HANDSHAKE_HEADERS = frozenset(
    {b"sec-websocket-protocol", b"sec-websocket-accept", b"sec-websocket-extensions", b"upgrade", b"connection"}
)


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


def payload_of(message: Mapping[str, Any]) -> tuple[bool, bytes]:
    """Is a ``websocket.send`` text, and its payload as it goes on the wire (UTF-8 for text).

    Exactly one of ``text`` and ``bytes`` must be set, with the right type.
    """
    text, data = message.get("text"), message.get("bytes")
    if (text is None) == (data is None):
        raise ASGIProtocolError("websocket.send: exactly one of 'text' and 'bytes' must be set")
    if text is not None:
        if type(text) is not str:
            raise ASGIProtocolError(f"websocket.send: text must be a str, got {type(text).__name__}")
        return True, _utf8(text, "websocket.send: text")
    if isinstance(data, bytearray | memoryview):
        return False, bytes(data)
    if type(data) is not bytes:
        raise ASGIProtocolError(f"websocket.send: bytes must be bytes, got {type(data).__name__}")
    return False, data


def accept_headers(raw: Any) -> list[tuple[bytes, bytes]]:
    """The extra headers of a ``websocket.accept``, none of which the handshake owns."""
    headers = validate_headers(raw, "websocket.accept")
    for name, _ in headers:
        if name in _HANDSHAKE_HEADERS:
            hint = " (use the 'subprotocol' key)" if name == b"sec-websocket-protocol" else ""
            raise ASGIProtocolError(f"websocket.accept: header {name.decode()!r} belongs to the handshake{hint}")
    return headers


def denial_status(status: Any) -> int:
    if type(status) is not int or not 200 <= status <= 599:
        raise ASGIProtocolError(f"websocket.http.response.start: status must be an int in 200-599, got {status!r}")
    return status


def denial_body(message: Mapping[str, Any]) -> bytes:
    body = message.get("body", b"")
    if isinstance(body, bytearray | memoryview):
        body = bytes(body)
    if type(body) is not bytes:
        raise ASGIProtocolError(f"websocket.http.response.body: body must be bytes, got {type(body).__name__}")
    return body


__all__ = [
    "MAX_REASON_BYTES",
    "accept_headers",
    "close_code_of",
    "close_reason_of",
    "denial_body",
    "denial_status",
    "payload_of",
]
