"""ASGI type aliases, deliberately loose like Starlette's.

Apps hand us arbitrary mappings; we narrow on ``message["type"]`` as soon as a
message arrives, so precise TypedDicts would only move the casts around.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
