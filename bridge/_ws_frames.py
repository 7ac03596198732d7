"""The frames the server sends for a whole app message, built without wsproto's copies.

wsproto's ``Connection.send`` copies a payload three times on its way out
(``bytearray``, ``bytes`` for the extension, the header concatenation): a
cost per MiB that showed in the profile of the 1 MiB echo.  A server frame
is simple (never masked, and we never fragment), so it is built here with
one copy, compressed first when permessage-deflate was agreed.
"""

from __future__ import annotations

import struct

from bridge._ws_deflate import COMPRESS_MIN, BoundedDeflate

_FIN = 0x80
_RSV1 = 0x40
_TEXT = 0x1
_BINARY = 0x2


def message_frame(text: bool, payload: bytes, deflate: BoundedDeflate | None) -> bytes:
    """One unmasked, final frame carrying a whole message (RFC 6455 5.2, RFC 7692 6).

    ``deflate`` is the connection's extension if it was agreed; messages
    under ``COMPRESS_MIN`` bytes go uncompressed all the same.
    """
    first = _FIN | (_TEXT if text else _BINARY)
    if deflate is not None and len(payload) >= COMPRESS_MIN:
        payload = deflate.compress(payload)
        first |= _RSV1
    n = len(payload)
    if n < 126:
        header = bytes((first, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


__all__ = ["message_frame"]
