"""``http.response.pathsend``: a file streamed by a Twisted producer, never read into memory.

FileSender reads 16 KiB at a time and pauses with the transport, so a slow
reader of a large file costs no memory.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from twisted.protocols.basic import FileSender
from twisted.web.server import Request

from bridge._aio import as_future


def open_checked(path: str, declared_length: int | None) -> BinaryIO:
    """Open ``path``, or raise ``ValueError`` saying why it cannot be sent.

    The file must exist and match the app's ``content-length``: FileSender
    sends to EOF, and a mismatch would either put bytes of this body where
    the client expects the next response or leave the response unfinished.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 -- closed by send_file or below
    except OSError as e:
        raise ValueError(f"cannot open {path!r}: {e}") from None
    size = os.fstat(f.fileno()).st_size
    if declared_length is not None and size != declared_length:
        f.close()
        raise ValueError(f"{path!r} has {size} bytes but content-length is {declared_length}")
    return f


async def send_file(f: BinaryIO, request: Request, connected: bool) -> None:
    """Write ``f`` to ``request`` (headers first, even for an empty file); closes ``f``.

    A cancelled or failed transfer stops the producer before its file is
    closed under it (FileSender's Deferred has no canceller).
    """
    sender = FileSender()
    try:
        request.write(b"")
        if os.fstat(f.fileno()).st_size:
            await as_future(sender.beginFileTransfer(f, request))
    except BaseException:
        if getattr(sender, "file", None) is not None:
            sender.deferred = sender.file = None  # its Deferred was already cancelled
            if connected and not request._disconnected:
                request.unregisterProducer()
        raise
    finally:
        f.close()


__all__ = ["open_checked", "send_file"]
