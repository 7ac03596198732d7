"""Request bodies that flow to the app while the client is still uploading.

Twisted's ``Request`` writes body chunks into ``request.content`` and only
renders once the last byte is in.  ``BodyPipe`` stands in for that file when
``bridge.StreamingSite`` renders a streaming-capable resource early: chunks
are handed to whoever is attached (an ASGI request handler), and chunks that
arrive before anyone attached are kept until then.
"""

from __future__ import annotations

from typing import Any, Protocol


class BodyConsumer(Protocol):
    def body_chunk(self, data: bytes) -> None: ...

    def body_end(self) -> None: ...


class BodyPipe:
    """A write-only stand-in for ``request.content`` that forwards chunks."""

    def __init__(self) -> None:
        self._consumer: BodyConsumer | None = None
        self._early = bytearray()
        self._discarding = False
        self.finished = False
        #: Bytes seen so far; the limit check needs it even before attach.
        self.received = 0

    def attach(self, consumer: BodyConsumer) -> None:
        """Start forwarding; replays anything that arrived before."""
        self._consumer = consumer
        early, self._early = self._early, bytearray()
        if early:
            consumer.body_chunk(bytes(early))
        if self.finished:
            consumer.body_end()

    def detach(self) -> None:
        """Drop the consumer; further chunks are discarded."""
        self._consumer = None
        self._early = bytearray()
        self._discarding = True

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self._consumer is not None:
            self._consumer.body_chunk(data)
        elif not self._discarding:
            self._early += data

    def finish(self) -> None:
        self.finished = True
        if self._consumer is not None:
            self._consumer.body_end()

    # The parts of the file interface Twisted's Request touches.
    def close(self) -> None:
        self.detach()

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return self.received

    def read(self, size: int = -1) -> bytes:
        return b""


def buffered_length(content: Any) -> int:
    """Size of a body Twisted already buffered (a plain ``Site``); leaves it rewound."""
    if content is None or isinstance(content, BodyPipe):
        return 0
    size: int = content.seek(0, 2)
    content.seek(0, 0)
    return size


def declared_length(request: Any) -> int:
    values = request.requestHeaders.getRawHeaders(b"content-length")
    if not values:
        return 0
    try:
        return int(values[0])
    except ValueError:
        return 0


__all__ = ["BodyConsumer", "BodyPipe", "buffered_length", "declared_length"]
