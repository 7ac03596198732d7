"""``--ws-per-message-deflate`` / ``--no-ws-per-message-deflate`` on a real ``hybrid serve``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.sync.client import connect

from tests.bridge.test_websocket_compression import json_text
from tests.conftest import HybridProcess


@pytest.mark.parametrize(
    ("options", "negotiated"),
    [((), "permessage-deflate; server_max_window_bits=12"), (("--no-ws-per-message-deflate",), None)],
    ids=["default", "switched-off"],
)
def test_compression_is_on_by_default_and_the_option_switches_it_off(
    hybrid_server: Callable[..., HybridProcess], options: tuple[str, ...], negotiated: str | None
) -> None:
    server = hybrid_server(*options)
    url = server.url.replace("http://", "ws://") + "/asgi/live"
    with connect(url, open_timeout=30, close_timeout=30) as ws:  # the client offers permessage-deflate
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") == negotiated
        assert ws.recv(timeout=30)  # the live feed's first push arrives either way


@pytest.mark.parametrize(("argv", "expected"), [([], True), (["--no-ws-per-message-deflate"], False)])
def test_the_twistd_plugin_passes_the_option_to_each_asgi_mount(argv: list[str], expected: bool) -> None:
    from app.twistd_plugin import Options

    options = Options()
    options.parseOptions(argv)
    assert options.serve.asgi_arguments()["ws_per_message_deflate"] is expected


def test_hybrid_serve_echoes_1_byte_to_16_mib_compressed(hybrid_server: Callable[..., HybridProcess]) -> None:
    """Issue 18's "done when": a websockets client with compression on, through ``hybrid serve``."""
    server = hybrid_server("--mount", "/echo=bench.servers.apps:raw_app")
    url = server.url.replace("http://", "ws://") + "/echo/ws"
    with connect(url, open_timeout=30, close_timeout=30, max_size=None) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        for size in (1, 1024 * 1024, 16 * 1024 * 1024):
            text = json_text(size)
            ws.send(text)
            assert ws.recv(timeout=60) == text
