"""What the WebSocket state machine asks the I/O side to do, and the handshake's refusal.

``bridge._ws_cycle`` returns these plain values; ``bridge.websocket`` carries
them out on the Twisted transport.  Keeping them apart lets the sans-IO side
be tested without a socket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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


__all__ = ["AcceptUpgrade", "Action", "AwaitPeerClose", "CloseTransport", "HandshakeError", "SendBytes", "StartDenial"]
