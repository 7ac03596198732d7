"""``--ws-per-message-deflate`` / ``--no-ws-per-message-deflate`` on a real ``hybrid serve``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from websockets.sync.client import connect

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
