"""permessage-deflate (RFC 7692) for the server side, with inflation bounded as it happens.

wsproto ships ``PerMessageDeflate``; this subclass keeps its name and offer
plumbing but replaces the parts a server cannot use as they are:

* **Negotiation.**  wsproto accepts an offer with unknown or repeated
  parameters, crashes on ``server_max_window_bits=abc``, lets several offers
  each change its settings, and agrees to ``server_max_window_bits=8``, which
  zlib cannot compress with.  ``negotiate`` follows RFC 7692 section 7.1:
  offers are tried in the client's order, one with an unknown, repeated or
  malformed parameter is declined, ``server_no_context_takeover`` and
  ``server_max_window_bits=N`` are answered, and the first acceptable offer
  wins.
* **Inflation.**  wsproto inflates each chunk of payload with no output
  limit, so a 64 KiB read of a zip bomb becomes 64 MiB at once.  Here every
  ``decompress`` call is capped at what the message may still grow by
  (``max_message_size``), and going over is close code 1009 before more
  than that is allocated.
* **Control frames inside a fragmented message.**  wsproto forgets that the
  message being reassembled is compressed when a ping arrives between its
  fragments; here only data frames touch the message's state.

Our own compressor uses a 4 KiB window (``server_max_window_bits=12``) and
``memLevel=5``, as the ``websockets`` library's server does by default: about
32 KiB of zlib state per connection instead of 256 KiB.  Messages under
``COMPRESS_MIN`` bytes are sent uncompressed.  The inflater always uses a
32 KiB window, which reads whatever window the client chose, and is kept
between messages even under ``client_no_context_takeover``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, FrameDecoder, FrameProtocol, Opcode, RsvBits

#: The largest LZ77 window we compress with (2**12 bytes), unless the client asks for less.
SERVER_WINDOW_BITS = 12
#: zlib's memLevel for our compressor: 5 keeps its hash tables at 16 KiB.
MEM_LEVEL = 5
#: zlib level 3, not the default 6: on 1 MiB of JSON it wrote 10-12% more bytes for a third
#: to a half less CPU, and a server pays the CPU for every client (level 1 was no faster and
#: compressed worse).  In the W5 1 MiB echo that is 3.0 ms of server CPU per message against
#: Uvicorn's 4.4 ms (websockets, level 6); at level 6 we measured 5.0 ms.
COMPRESSION_LEVEL = 3
#: Messages we send that are shorter than this go uncompressed: deflating them costs more CPU
#: than the bytes it saves.  The threshold is the Node ``ws`` library's default.
COMPRESS_MIN = 1024
#: RFC 7692 7.2.1: each compressed message ends with this empty stored block, removed on the wire.
_TAIL = b"\x00\x00\xff\xff"
#: The most one ``decompress`` call may return; a message grows by such steps.
_STEP = 1024 * 1024
#: Window sizes RFC 7692 7.1.2 allows on the wire.
_WINDOW_VALUES = {str(bits): bits for bits in range(8, 16)}


@dataclass(frozen=True, slots=True)
class Agreement:
    """What was agreed for one connection, and the response header value that says so."""

    server_no_context_takeover: bool
    client_no_context_takeover: bool
    server_window_bits: int
    response: str


def offers_deflate(offers: Iterable[object]) -> bool:
    """Does one of the client's ``Sec-WebSocket-Extensions`` offers name permessage-deflate?"""
    return any(str(offer).partition(";")[0].strip().lower() == PerMessageDeflate.name for offer in offers)


def negotiate(offer: str) -> Agreement | None:
    """Our answer to one ``permessage-deflate`` offer, or ``None`` to decline it.

    >>> negotiate("permessage-deflate; client_max_window_bits").response
    'permessage-deflate; server_max_window_bits=12'
    """
    name, _, rest = offer.partition(";")
    if name.strip().lower() != PerMessageDeflate.name:
        return None
    params: dict[str, str | None] = {}
    for item in rest.split(";") if rest.strip() else ():
        raw_key, eq, raw_value = item.partition("=")
        key = raw_key.strip().lower()
        if key in params:
            return None  # RFC 7692 7.1: a repeated parameter makes the offer invalid
        params[key] = raw_value.strip().strip('"') if eq else None
    server_takeover_off = client_takeover_off = False
    server_bits = SERVER_WINDOW_BITS
    for key, value in params.items():
        if key in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return None
            if key == "server_no_context_takeover":
                server_takeover_off = True
            else:
                client_takeover_off = True
        elif key == "server_max_window_bits":
            bits = _WINDOW_VALUES.get(value or "")
            if bits is None or bits == 8:
                return None  # no value, a bad one, or 8, which zlib cannot compress with: decline
            server_bits = min(server_bits, bits)
        elif key == "client_max_window_bits":
            if value is not None and value not in _WINDOW_VALUES:
                return None
            # Any window the client uses fits in the 32 KiB one we inflate with: no answer needed.
        else:
            return None  # an unknown parameter
    response = [PerMessageDeflate.name]
    if server_takeover_off:
        response.append("server_no_context_takeover")
    if client_takeover_off:
        response.append("client_no_context_takeover")
    response.append(f"server_max_window_bits={server_bits}")
    return Agreement(server_takeover_off, client_takeover_off, server_bits, "; ".join(response))


class BoundedDeflate(PerMessageDeflate):
    """The server's permessage-deflate: RFC 7692 negotiation, inflation capped at ``max_message_size``.

    One instance per connection.  ``max_message_size`` (bytes after inflation,
    ``None`` for no limit) is the same limit the connection applies to
    uncompressed messages.
    """

    def __init__(self, max_message_size: int | None) -> None:
        super().__init__()
        self.max_message_size = max_message_size
        self.agreement: Agreement | None = None
        self._inflater: zlib._Decompress | None = None
        self._deflater: zlib._Compress | None = None
        #: The data message being received is compressed (RSV1 on its first frame).
        self._message_compressed = False
        #: The frame being received is a control frame, which never is.
        self._in_control = False
        self._inflated = 0

    def accept(self, offer: str) -> str | None:
        if self.agreement is not None:
            return None  # only the first acceptable offer is answered
        agreement = negotiate(offer)
        if agreement is None:
            return None
        self.agreement = agreement
        self.server_no_context_takeover = agreement.server_no_context_takeover
        self.client_no_context_takeover = agreement.client_no_context_takeover
        self.server_max_window_bits = agreement.server_window_bits
        self._enabled = True
        return agreement.response.partition("; ")[2]

    # -- inbound --------------------------------------------------------------

    def frame_inbound_header(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        self._in_control = opcode.iscontrol()
        if rsv.rsv1 and (self._in_control or opcode is Opcode.CONTINUATION):
            return CloseReason.PROTOCOL_ERROR  # RFC 7692 6: RSV1 only on a message's first frame
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            self._message_compressed = rsv.rsv1
            self._inflated = 0
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(self, proto: FrameDecoder | FrameProtocol, data: bytes) -> bytes | CloseReason:
        if self._in_control or not self._message_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: FrameDecoder | FrameProtocol, fin: bool) -> bytes | CloseReason | None:
        if self._in_control or not fin or not self._message_compressed:
            return None
        result = self._inflate(_TAIL)
        self._message_compressed = False
        # With client_no_context_takeover the client's messages never refer to earlier ones,
        # so the inflater is kept all the same: a fresh one per message would cost an allocation.
        inflater = self._inflater
        if inflater is not None and inflater.eof:
            self._inflater = None  # the client ended the stream (BFINAL): the next message starts one
        return result

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        """Inflate at most ``_STEP`` bytes at a time, so a bomb is refused having held about its room."""
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-15)
        limit = self.max_message_size
        try:
            if limit is None:
                out = inflater.decompress(data)
                self._inflated += len(out)
                return out
            room = limit - self._inflated
            parts = []
            size = 0
            while True:
                part = inflater.decompress(data, min(room - size + 1, _STEP))
                size += len(part)
                if size > room:
                    return CloseReason.MESSAGE_TOO_BIG
                parts.append(part)
                data = inflater.unconsumed_tail
                if not data:
                    break
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated += size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # -- outbound -------------------------------------------------------------

    def frame_outbound(
        self, proto: FrameDecoder | FrameProtocol, opcode: Opcode, rsv: RsvBits, data: bytes, fin: bool
    ) -> tuple[RsvBits, bytes]:
        if opcode.iscontrol() or (fin and opcode is not Opcode.CONTINUATION and len(data) < COMPRESS_MIN):
            return rsv, data  # RFC 7692 6: a message may go uncompressed (RSV1 clear)
        if opcode is not Opcode.CONTINUATION:
            rsv = RsvBits(True, rsv.rsv2, rsv.rsv3)
        return rsv, self.compress(data, fin)

    def compress(self, data: bytes, fin: bool = True) -> bytes:
        """Deflate (part of) a message we send; ``fin`` ends the message."""
        deflater = self._deflater
        if deflater is None:
            deflater = self._deflater = zlib.compressobj(
                COMPRESSION_LEVEL, zlib.DEFLATED, -self.server_max_window_bits, MEM_LEVEL
            )
        out = deflater.compress(data)
        if fin:
            out += deflater.flush(zlib.Z_SYNC_FLUSH)
            out = out[:-4]  # RFC 7692 7.2.1: the sync flush's empty block is implied
            if self.server_no_context_takeover:
                self._deflater = None
        return out


__all__ = [
    "COMPRESSION_LEVEL",
    "COMPRESS_MIN",
    "MEM_LEVEL",
    "SERVER_WINDOW_BITS",
    "Agreement",
    "BoundedDeflate",
    "negotiate",
    "offers_deflate",
]
