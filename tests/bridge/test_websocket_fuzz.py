"""Fuzzed WebSocket frames, compressed and not: the server never fails and closes only with valid codes.

Bounded: a few hundred examples against the sans-IO cycle, a few dozen against a live server
(after each, a fresh connection must still echo).
"""

from __future__ import annotations

import itertools
import socket
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, CloseConnection, Event
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import RemoteProtocolError

from bridge._ws_actions import AwaitPeerClose, CloseTransport, SendBytes
from bridge._ws_cycle import WebSocketCycle
from tests.bridge.test_websocket_deflate import upgrade_headers
from tests.bridge.ws_helpers import RawClient
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
#: Codes a server may send (RFC 6455 7.4.1; 1004-1006 and 1015 never go on the wire), plus
#: 1005, which is how a reader reports a close frame without a code (the echo of such a frame).
SERVER_CLOSE_CODES = {1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1010, 1011}


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One frame, mostly well-formed: any opcode, RSV bits, FIN, a payload raw or deflated, masked or not."""
    opcode = draw(st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA, 0x3, 0xB]))
    fin = draw(st.booleans())
    rsv1 = draw(st.booleans())
    rsv23 = draw(st.sampled_from([0, 0, 0, 0x10, 0x20]))
    if draw(st.booleans()):
        text = draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
        deflater = zlib.compressobj(draw(st.integers(0, 9)), zlib.DEFLATED, -15)
        payload = (deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    else:
        payload = draw(st.binary(max_size=300))
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | rsv23 | opcode])
    masked = draw(st.integers(0, 9)) > 0
    n = len(payload)
    length = bytes([n]) if n < 126 else bytes([126]) + struct.pack("!H", n)
    head += bytes([length[0] | (0x80 if masked else 0)]) + length[1:]
    if not masked:
        return head + payload
    mask = draw(st.binary(min_size=4, max_size=4))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


wire = st.lists(st.one_of(frames(), st.binary(max_size=40)), min_size=1, max_size=12).map(b"".join)


def server_events(data: bytes) -> list[Event]:
    reader = Connection(ConnectionType.CLIENT)
    reader.receive_data(data)
    return list(reader.events())


@settings(max_examples=400, deadline=None)
@given(data=wire, cuts=st.lists(st.integers(0, 4000), max_size=6), deflate=st.booleans())
def test_the_cycle_survives_any_bytes_and_closes_with_a_valid_code(data: bytes, cuts: list[int], deflate: bool) -> None:
    cycle = WebSocketCycle(
        upgrade_headers("permessage-deflate; client_max_window_bits"),
        b"/",
        max_message_size=4096,
        per_message_deflate=deflate,
    )
    cycle.next_receive()
    cycle.app_send({"type": "websocket.accept"})
    written, actions = b"", []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        step = cycle.receive_data(data[start:end])
        actions += step
        written += b"".join(a.data for a in step if isinstance(a, SendBytes))
    while (message := cycle.next_receive()) is not None and message["type"] == "websocket.receive":
        assert len(message.get("text") or message.get("bytes") or b"") <= 4096 * 4
    closes = [e for e in server_events(written) if isinstance(e, CloseConnection)]
    assert len(closes) <= 1
    for close in closes:
        assert close.code in SERVER_CLOSE_CODES
        assert any(isinstance(a, CloseTransport | AwaitPeerClose) for a in actions)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "ws_server.py")]) as running:
        yield running


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=wire, offer=st.booleans())
def test_a_live_server_survives_fuzzed_frames(server: RunningServer, data: bytes, offer: bool) -> None:
    client = RawClient(server.port, "/small/echo", extensions=[PerMessageDeflate()] if offer else [])
    try:
        assert isinstance(client.handshake(), AcceptConnection)
        try:
            client.sock.sendall(data)
            client.sock.shutdown(socket.SHUT_WR)  # end of input: the server must finish the connection
        except (BrokenPipeError, ConnectionResetError):
            pass  # it already did
        closes = []
        while True:
            try:
                event = client.next_event()
            except (EOFError, ConnectionResetError, RemoteProtocolError):
                break
            if isinstance(event, CloseConnection):
                closes.append(event.code)
        assert all(code in SERVER_CLOSE_CODES for code in closes), closes
    finally:
        client.close()
    with connect(f"ws://127.0.0.1:{server.port}/ws/echo", open_timeout=30) as ws:
        ws.send("alive")
        assert ws.recv(timeout=30) == "alive"
