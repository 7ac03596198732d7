"""Deliver an ASGI request body to ``request.content`` the way ``HTTPChannel`` does.

Twisted reads the whole body before ``render()`` and keeps it in ``request.content``: a
``BytesIO`` for a declared length under 100 kB, otherwise a temporary file (``Request.gotLength``,
which also honours a ``Site.getContentFile`` override).  Calling ``gotLength`` and
``handleContentChunk`` here keeps that behaviour exact; the size limit is ours (Twisted has none).
"""

from __future__ import annotations

import enum

from twisted.web.server import Request

from bridge.types import Receive


class BodyOutcome(enum.Enum):
    COMPLETE = enum.auto()
    TOO_LARGE = enum.auto()
    DISCONNECTED = enum.auto()


async def read_body(request: Request, receive: Receive, declared: int | None, limit: int | None) -> BodyOutcome:
    """Read the body into ``request.content``; stop early if it exceeds ``limit`` bytes.

    Without a declared length, a body that arrives in one message gets that message's length
    (as a ``Content-Length`` would), and a streamed one gets ``None`` (as a chunked upload).
    """
    if limit is not None and declared is not None and declared > limit:
        return BodyOutcome.TOO_LARGE
    message = await receive()
    if message["type"] == "http.disconnect":
        return BodyOutcome.DISCONNECTED
    body, more = message.get("body", b""), message.get("more_body", False)
    if declared is None and not more:
        declared = len(body)
    request.gotLength(declared)
    received = 0
    while True:
        received += len(body)
        if limit is not None and received > limit:
            return BodyOutcome.TOO_LARGE
        if body:
            request.handleContentChunk(body)
        if not more:
            return BodyOutcome.COMPLETE
        message = await receive()
        if message["type"] == "http.disconnect":
            return BodyOutcome.DISCONNECTED
        body, more = message.get("body", b""), message.get("more_body", False)
