"""The HTTP side of a WebSocket upgrade: recognising an offer and validating it with wsproto.

wsproto's ``H11Handshake`` is fed the headers Twisted already parsed, so no
second HTTP parser ever sees the raw request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import h11
from wsproto import ConnectionType
from wsproto.events import RejectConnection, Request
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from bridge._ws_actions import HandshakeError


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


def start_handshake(headers: Sequence[tuple[bytes, bytes]], target: bytes) -> tuple[H11Handshake, Request]:
    """A server ``H11Handshake`` that has read the upgrade request, and that request.

    :raises HandshakeError: the request is not a valid WebSocket upgrade.
    """
    if _has_body(headers):
        raise HandshakeError(400, "a WebSocket handshake request has no body")
    handshake = H11Handshake(ConnectionType.SERVER)
    try:
        handshake.initiate_upgrade_connection(list(headers), target)
        request = next(handshake.events())
    except RemoteProtocolError as e:
        hint = e.event_hint
        if isinstance(hint, RejectConnection):
            raise HandshakeError(hint.status_code, str(e), hint.headers) from None
        raise HandshakeError(400, str(e)) from None
    except (h11.ProtocolError, UnicodeError, ValueError) as e:
        # h11 refuses a header value or target Twisted let through (or an
        # extension offer is not ASCII); the details (client bytes) belong in
        # the log, not in the answer.
        raise HandshakeError(400, "invalid header or target in the WebSocket handshake") from e
    assert isinstance(request, Request)
    return handshake, request


__all__ = ["is_upgrade_offer", "start_handshake"]
