"""The bridge's error taxonomy.

``ASGIProtocolError`` means the *application* broke the ASGI contract (h11's
"local" side); it carries the HTTP status a server should answer with if the
response has not started yet.  A client going away is not an app error: it is
``ClientDisconnected``, an ``OSError`` subclass as ASGI spec 2.4 asks for, so
frameworks that already catch ``OSError`` around ``send()`` stop cleanly.
"""

from __future__ import annotations


class ASGIProtocolError(RuntimeError):
    """The application sent a message that is invalid in the current state."""

    def __init__(self, message: str, *, status_hint: int = 500) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class ClientDisconnected(OSError):
    """``send()`` was called after the client closed the connection."""


class LifespanFailure(RuntimeError):
    """Lifespan startup or shutdown failed; the message says what to check."""


__all__ = ["ASGIProtocolError", "ClientDisconnected", "LifespanFailure"]
