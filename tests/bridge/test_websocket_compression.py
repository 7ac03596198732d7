"""permessage-deflate over real sockets: the ``websockets`` client with compression on, and a raw wsproto client.

One ``ws_server.py`` serves the module; ``/ws`` has compression on (the default), ``/plain``
has it switched off (``ws_per_message_deflate=False``).  The sans-IO details (negotiation
table, RSV1 rules, the inflation bound) are in ``test_websocket_deflate.py``.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, PerMessageDeflate
from websockets.sync.client import ClientConnection, connect
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Pong
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

from tests.bridge.test_websocket_deflate import BINARY, CONTINUATION, PING, frame
from tests.bridge.ws_helpers import RawClient
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "ws_server.py")]) as running:
        yield running


def open_ws(server: RunningServer, path: str, **kwargs: Any) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=30, close_timeout=30, max_size=None, **kwargs)


def json_text(size: int) -> str:
    """Compressible JSON text of exactly ``size`` characters (cut or padded with spaces)."""
    items = [{"id": i, "name": f"item-{i}", "tags": ["a", "b"], "ok": True} for i in range(size // 50 + 1)]
    return json.dumps(items)[:size].ljust(size)


def deflate_of(ws: ClientConnection) -> PerMessageDeflate:
    (extension,) = ws.protocol.extensions
    assert isinstance(extension, PerMessageDeflate)
    return extension


COMBINATIONS = list(
    itertools.product(
        [False, True],  # server_no_context_takeover
        [False, True],  # client_no_context_takeover
        [None, 9, 12, 15],  # server_max_window_bits
        [False, True, 9, 15],  # client_max_window_bits (True: offered without a value)
    )
)


@pytest.mark.parametrize(
    ("server_nct", "client_nct", "server_bits", "client_bits"),
    COMBINATIONS,
    ids=[f"snct={a}-cnct={b}-sbits={c}-cbits={d}" for a, b, c, d in COMBINATIONS],
)
def test_every_offer_the_websockets_client_can_make_is_negotiated_and_echoes(
    server: RunningServer, server_nct: bool, client_nct: bool, server_bits: int | None, client_bits: bool | int
) -> None:
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=server_nct,
        client_no_context_takeover=client_nct,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits or None,
    )
    messages: list[str | bytes] = [json_text(100_000), json_text(100_000), "x", json_text(3000).encode()]
    with open_ws(server, "/ws/echo", extensions=[factory], compression=None) as ws:
        negotiated = deflate_of(ws)
        assert negotiated.remote_no_context_takeover is server_nct
        assert negotiated.local_no_context_takeover is client_nct
        assert negotiated.remote_max_window_bits == min(server_bits or 15, 12)
        for message in messages:
            ws.send(message)
            assert ws.recv(timeout=30) == message


@pytest.mark.parametrize("size", [1, 125, 65536, MiB, 16 * MiB], ids=lambda n: f"{n}B")
def test_compressed_echo_from_one_byte_to_16_mib(server: RunningServer, size: int) -> None:
    text = json_text(size)
    with open_ws(server, "/ws/echo") as ws:  # the client's default offer: compression on
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == "permessage-deflate; server_max_window_bits=12"
        ws.send(text)
        assert ws.recv(timeout=60) == text
        ws.send(text.encode())
        assert ws.recv(timeout=60) == text.encode()


def test_compression_switched_off_declines_the_offer(server: RunningServer) -> None:
    with open_ws(server, "/plain/echo") as ws:
        assert ws.response is not None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []
        ws.send("hello")
        assert ws.recv(timeout=30) == "hello"


def test_fragmented_compressed_message_with_pings_between_fragments_over_a_socket(server: RunningServer) -> None:
    client = RawClient(server.port, "/ws/echo", extensions=[WsprotoDeflate()])
    try:
        accepted = client.handshake()
        assert isinstance(accepted, AcceptConnection) and accepted.extensions
        data = bytes(range(256)) * 400
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        compressed = (deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        cut = len(compressed) // 2
        client.sock.sendall(
            frame(BINARY, compressed[:cut], fin=False, rsv1=True)
            + frame(PING, b"between")
            + frame(CONTINUATION, compressed[cut:])
        )
        assert client.next_event() == Pong(payload=b"between")
        echoed = client.next_event()
        assert isinstance(echoed, BytesMessage) and echoed.data == data
        client.send(Ping(payload=b"after"))
        assert client.next_event() == Pong(payload=b"after")
        client.send(CloseConnection(code=1000))
        assert isinstance(client.next_event(), CloseConnection)
    finally:
        client.close()

