"""permessage-deflate (RFC 7692) in the sans-IO cycle: negotiation, frames, and inflation bounded as it happens.

The client side is hand-built frames (so compressed, fragmented and control frames can be
interleaved as a hostile or unusual client would) plus zlib; the server side is the real
``WebSocketCycle``.  Real clients over sockets are in ``test_websocket_compression.py``.
"""

from __future__ import annotations

import os
import struct
import tracemalloc
import zlib

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection, Event, Pong, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from bridge._ws_actions import AcceptUpgrade, Action, CloseTransport, SendBytes
from bridge._ws_cycle import WebSocketCycle
from bridge._ws_deflate import COMPRESS_MIN, SERVER_WINDOW_BITS, negotiate

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
TEXT, BINARY, CONTINUATION, PING = 0x1, 0x2, 0x0, 0x9


# ---- negotiation (RFC 7692 section 7.1) ---------------------------------------------


@pytest.mark.parametrize(
    ("offer", "response"),
    [
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; client_max_window_bits=8", "permessage-deflate; server_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        ('permessage-deflate; server_max_window_bits="9"', "permessage-deflate; server_max_window_bits=9"),
        ("permessage-deflate; server_max_window_bits=15", "permessage-deflate; server_max_window_bits=12"),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        ),
        (
            "Permessage-Deflate ; Client_No_Context_Takeover",
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
        ),
    ],
)
def test_acceptable_offers_get_the_answer_rfc_7692_asks_for(offer: str, response: str) -> None:
    agreement = negotiate(offer)
    assert agreement is not None
    assert agreement.response == response


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=8",  # zlib cannot compress with a 256-byte window
        "permessage-deflate; server_max_window_bits",  # needs a value
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; server_max_window_bits=abc",
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; unknown_parameter",
        "x-webkit-deflate-frame",
    ],
)
def test_offers_that_must_be_declined_are(offer: str) -> None:
    assert negotiate(offer) is None


def extensions_header(cycle_actions: list[Action]) -> str | None:
    (accept,) = cycle_actions
    assert isinstance(accept, AcceptUpgrade)
    for line in accept.data.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            return value.strip().decode()
    return None


def upgrade_headers(extensions: str | None) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"host", b"example.com"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", KEY),
        (b"sec-websocket-version", b"13"),
    ]
    if extensions is not None:
        headers.append((b"sec-websocket-extensions", extensions.encode()))
    return headers


def test_the_first_acceptable_of_several_offers_is_answered_and_only_it() -> None:
    offers = (
        "permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate; server_max_window_bits=10; server_no_context_takeover, "
        "permessage-deflate"
    )
    cycle = WebSocketCycle(upgrade_headers(offers), b"/", max_message_size=None)
    header = extensions_header(cycle.app_send({"type": "websocket.accept"}))
    assert header == "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"


def test_no_extension_header_when_declined_not_offered_or_switched_off() -> None:
    declined = WebSocketCycle(upgrade_headers("permessage-deflate; bogus"), b"/", max_message_size=None)
    assert extensions_header(declined.app_send({"type": "websocket.accept"})) is None
    plain = WebSocketCycle(upgrade_headers(None), b"/", max_message_size=None)
    assert extensions_header(plain.app_send({"type": "websocket.accept"})) is None
    off = WebSocketCycle(upgrade_headers("permessage-deflate"), b"/", max_message_size=None, per_message_deflate=False)
    assert extensions_header(off.app_send({"type": "websocket.accept"})) is None


# ---- frames --------------------------------------------------------------------------


def frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One masked client frame (RFC 6455 5.2)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class DeflatePeer:
    """A client that negotiated permessage-deflate, compressing by hand."""

    def __init__(self, offer: str = "permessage-deflate", max_message_size: int | None = 1 << 20) -> None:
        self.cycle = WebSocketCycle(upgrade_headers(offer), b"/", max_message_size=max_message_size)
        self.cycle.next_receive()
        self.cycle.app_send({"type": "websocket.accept"})
        self.reader = Connection(ConnectionType.CLIENT, [self._client_extension(offer)])
        self.deflater = zlib.compressobj(9, zlib.DEFLATED, -15)

    @staticmethod
    def _client_extension(offer: str) -> PerMessageDeflate:
        ext = PerMessageDeflate()
        agreement = negotiate(offer)
        assert agreement is not None
        ext.finalize(agreement.response)
        return ext

    def compress(self, data: bytes, *, final: bool = True) -> bytes:
        out = self.deflater.compress(data)
        if final:
            out += self.deflater.flush(zlib.Z_SYNC_FLUSH)
            assert out.endswith(b"\x00\x00\xff\xff")
            out = out[:-4]
        return out

    def feed(self, data: bytes) -> list[Event]:
        """Give the server bytes; return what the client then saw from it."""
        actions = self.cycle.receive_data(data)
        events: list[Event] = []
        for action in actions:
            if isinstance(action, SendBytes):
                self.reader.receive_data(action.data)
                events.extend(self.reader.events())
        self.actions = actions
        return events

    def messages(self) -> list[dict[str, object]]:
        got = []
        while (message := self.cycle.next_receive()) is not None and message["type"] == "websocket.receive":
            got.append(message)
        return got


def test_compressed_messages_with_context_takeover_decode_one_after_another() -> None:
    peer = DeflatePeer()
    texts = [b'{"n": %d, "payload": "%s"}' % (i, b"abc" * i) for i in range(20)]
    for text in texts:
        assert peer.feed(frame(TEXT, peer.compress(text), rsv1=True)) == []
    assert [m["text"] for m in peer.messages()] == [t.decode() for t in texts]


def test_fragmented_compressed_message_with_pings_between_fragments() -> None:
    """wsproto alone forgets a message is compressed once a ping arrives mid-message."""
    peer = DeflatePeer()
    data = os.urandom(1000) + b"z" * 50_000
    compressed = peer.compress(data)
    thirds = [compressed[: len(compressed) // 3], compressed[len(compressed) // 3 : -5], compressed[-5:]]
    events = peer.feed(frame(BINARY, thirds[0], fin=False, rsv1=True))
    events += peer.feed(frame(PING, b"one"))
    events += peer.feed(frame(CONTINUATION, thirds[1], fin=False))
    events += peer.feed(frame(PING, b"two"))
    events += peer.feed(frame(CONTINUATION, thirds[2]))
    assert events == [Pong(payload=b"one"), Pong(payload=b"two")]
    assert peer.messages() == [{"type": "websocket.receive", "bytes": data}]
    # An uncompressed message may follow a compressed one (RFC 7692 6: RSV1 per message).
    peer.feed(frame(TEXT, b"plain"))
    assert peer.messages() == [{"type": "websocket.receive", "text": "plain"}]


@pytest.mark.parametrize(
    "bad",
    [
        frame(PING, b"x", rsv1=True),  # control frames are never compressed
        frame(TEXT, b"a", fin=False) + frame(CONTINUATION, b"b", rsv1=True),  # RSV1 only on the first frame
    ],
)
def test_rsv1_where_rfc_7692_forbids_it_closes_with_1002(bad: bytes) -> None:
    peer = DeflatePeer()
    events = peer.feed(bad)
    assert [type(e) for e in events] == [CloseConnection]
    assert isinstance(events[0], CloseConnection) and events[0].code == CloseReason.PROTOCOL_ERROR
    assert peer.actions[-1] == CloseTransport()


def test_corrupt_deflate_data_closes_with_1007() -> None:
    peer = DeflatePeer()
    events = peer.feed(frame(BINARY, b"\xff\xff\xff\xff garbage", rsv1=True))
    assert isinstance(events[0], CloseConnection) and events[0].code == CloseReason.INVALID_FRAME_PAYLOAD_DATA


def test_a_zip_bomb_frame_is_refused_with_1009_before_it_is_inflated() -> None:
    """64 MiB of zeros in one ~64 KiB frame against a 1 MiB limit: the peak allocation stays near 1 MiB."""
    peer = DeflatePeer(max_message_size=1 << 20)
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressed = b"".join(bomb.compress(bytes(1 << 20)) for _ in range(64)) + bomb.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(compressed) < 128 * 1024
    data = frame(BINARY, compressed, rsv1=True)
    tracemalloc.start()
    try:
        events = peer.feed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(events[0], CloseConnection) and events[0].code == CloseReason.MESSAGE_TOO_BIG
    assert events[0].reason == f"message larger than {1 << 20} bytes"
    assert peak < 4 << 20, f"{peak} bytes allocated while refusing the bomb"
    message = peer.cycle.next_receive()
    assert message is not None and message["type"] == "websocket.disconnect" and message["code"] == 1009


def test_the_limit_counts_inflated_bytes_across_fragments() -> None:
    peer = DeflatePeer(max_message_size=100_000)
    compressed = peer.compress(b"a" * 150_000)
    events = peer.feed(frame(TEXT, compressed[:40], fin=False, rsv1=True))
    assert events == []
    events = peer.feed(frame(CONTINUATION, compressed[40:]))
    assert isinstance(events[0], CloseConnection) and events[0].code == CloseReason.MESSAGE_TOO_BIG


@pytest.mark.parametrize("offer", ["permessage-deflate", "permessage-deflate; server_no_context_takeover"])
def test_server_messages_are_compressed_and_readable_by_a_wsproto_client(offer: str) -> None:
    peer = DeflatePeer(offer)
    sent = ["hello " * 200, "hello " * 200, "x" * (COMPRESS_MIN - 1), "y" * COMPRESS_MIN]
    for text in sent:
        (action,) = peer.cycle.app_send({"type": "websocket.send", "text": text})
        assert isinstance(action, SendBytes)
        # RSV1 (compressed) unless the message is short (RFC 7692 6 allows either per message)
        assert bool(action.data[0] & 0x40) is (len(text) >= COMPRESS_MIN)
        peer.reader.receive_data(action.data)
    got = [e for e in peer.reader.events() if isinstance(e, TextMessage)]
    assert [e.data for e in got] == sent


def test_compression_off_leaves_rsv1_frames_a_protocol_error() -> None:
    headers = upgrade_headers("permessage-deflate")
    cycle = WebSocketCycle(headers, b"/", max_message_size=None, per_message_deflate=False)
    cycle.next_receive()
    cycle.app_send({"type": "websocket.accept"})
    reader = Connection(ConnectionType.CLIENT)
    for action in cycle.receive_data(frame(TEXT, zlib.compress(b"x")[2:-4], rsv1=True)):
        if isinstance(action, SendBytes):
            reader.receive_data(action.data)
    (close,) = [e for e in reader.events() if isinstance(e, CloseConnection)]
    assert close.code == CloseReason.PROTOCOL_ERROR


def test_server_window_bits_default_is_what_the_answer_says() -> None:
    agreement = negotiate("permessage-deflate")
    assert agreement is not None and agreement.server_window_bits == SERVER_WINDOW_BITS

