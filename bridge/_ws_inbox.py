"""Incoming WebSocket messages: reassembled from fragments, queued for the app, counted in memory.

A client chooses how it slices its messages, so what is held is counted by
what it costs, not by payload length: a message being reassembled keeps its
fragments of ``_SMALL`` bytes or more as they are (one copy when the message
is joined), and coalesces runs of smaller ones, so no fragment smaller than
that is held on its own for long; each queued message is charged its Python
objects' sizes (``sys.getsizeof`` of the payload plus the message dict).

Bounds, per connection: the message being reassembled holds at most
``max_message_size`` bytes of UTF-8 (a ``str`` stores 1, 2 or 4 bytes per
character, so at most 4x that), plus about 1% of object headers; the queue is
*backlogged* at
``BACKLOG_MESSAGES`` messages or ``BACKLOG_BYTES`` of cost, and the
connection stops turning bytes into messages while it is, so the queue ends
at most one message over that.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

#: Above this many undelivered messages or bytes the connection stops reading
#: the socket, so a client cannot fill server memory while the app is busy
#: (the same idea as the ``websockets`` library's ``max_queue``).
BACKLOG_MESSAGES = 32
BACKLOG_BYTES = 1024 * 1024
#: What a queued message costs beyond its payload object: the dict and its entries.
_MESSAGE_COST = sys.getsizeof({"type": "websocket.receive", "text": ""})
#: Fragments shorter than this are coalesced, ``_RUN`` at a time, while a message is reassembled.
_SMALL = 4096
_RUN = 64


class Inbox:
    """Messages for ``receive()``, oldest first, and the one still arriving in fragments.

    :param max_message_size: a message whose UTF-8 size goes over this is
        refused (``add`` returns ``False``); ``None`` means no limit.
    """

    __slots__ = ("_parts", "_queue", "_run", "_size", "held", "max_message_size")

    def __init__(self, max_message_size: int | None) -> None:
        self.max_message_size = max_message_size
        self._queue: deque[dict[str, Any]] = deque()
        #: Bytes of memory the queued messages cost.
        self.held = 0
        #: The message being reassembled: fragments of at least ``_SMALL``, then a run of smaller ones.
        self._parts: list[Any] = []
        self._run: list[Any] = []
        self._size = 0
        self._put({"type": "websocket.connect"})

    @property
    def backlogged(self) -> bool:
        """Too much is waiting for the app: stop reading until it catches up."""
        return len(self._queue) >= BACKLOG_MESSAGES or self.held >= BACKLOG_BYTES

    def pop(self) -> dict[str, Any] | None:
        if not self._queue:
            return None
        message = self._queue.popleft()
        self.held -= _cost_of(message)
        return message

    def add(self, data: str | bytes | bytearray, finished: bool) -> bool:
        """Add one fragment; ``False`` (and nothing kept) when the message grew over the limit."""
        self._size += _utf8_length(data)
        limit = self.max_message_size
        if limit is not None and self._size > limit:
            self.drop_partial()
            return False
        if finished and not self._parts and not self._run:  # a whole message in one frame: no copy
            self._size = 0
            if isinstance(data, str):
                self._put({"type": "websocket.receive", "text": data})
            else:
                self._put({"type": "websocket.receive", "bytes": bytes(data)})
            return True
        if len(data) >= _SMALL:
            self._flush_run()
            self._parts.append(data)
        else:
            run = self._run
            run.append(data)
            if len(run) >= _RUN:
                joined = run[0][:0].join(run)
                run.clear()
                (self._parts if len(joined) >= _SMALL else run).append(joined)
        if finished:
            self._flush_run()
            pieces = self._parts
            message: dict[str, Any] = (
                {"type": "websocket.receive", "text": "".join(pieces)}
                if isinstance(data, str)
                else {"type": "websocket.receive", "bytes": b"".join(pieces)}
            )
            self.drop_partial()
            self._put(message)
        return True

    def _flush_run(self) -> None:
        run = self._run
        if run:
            self._parts.append(run[0] if len(run) == 1 else run[0][:0].join(run))
            self._run = []

    def drop_partial(self) -> None:
        self._parts, self._run, self._size = [], [], 0

    def _put(self, message: dict[str, Any]) -> None:
        self._queue.append(message)
        self.held += _cost_of(message)


def _utf8_length(data: str | bytes | bytearray) -> int:
    if not isinstance(data, str):
        return len(data)
    return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))


def _cost_of(message: dict[str, Any]) -> int:
    payload = message.get("text")
    if payload is None:
        payload = message.get("bytes", b"")
    return _MESSAGE_COST + sys.getsizeof(payload)


__all__ = ["BACKLOG_BYTES", "BACKLOG_MESSAGES", "Inbox"]
