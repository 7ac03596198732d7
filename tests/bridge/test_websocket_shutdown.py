"""Draining on shutdown: open WebSockets are closed with 1001 before lifespan shutdown.

``ws_server.py`` wires ``ASGIResource.websockets.close_all`` into ``LifespanService`` as a
drain, the way a server using the bridge should.
"""

from __future__ import annotations

import json
import re
import signal
from contextlib import ExitStack
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.bridge.ws_helpers import new_id
from tests.servers import run_server

HERE = Path(__file__).parent


def test_sigterm_closes_open_websockets_with_1001_then_runs_lifespan_shutdown() -> None:
    with run_server([str(HERE / "ws_server.py")]) as server, ExitStack() as stack:
        ids = [new_id(), new_id()]
        clients = [
            stack.enter_context(
                connect(f"ws://127.0.0.1:{server.port}/ws/echo?id={conn_id}&print=1", open_timeout=30, close_timeout=30)
            )
            for conn_id in ids
        ]
        for ws in clients:
            ws.send("ready?")
            assert ws.recv(timeout=30) == "ready?"
        server.proc.send_signal(signal.SIGTERM)
        for ws in clients:
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=30)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (1001, "server shutting down")
        assert server.proc.wait(timeout=30) == 0
        log = server.log()
    for conn_id in ids:
        match = re.search(rf"^END {conn_id} (.*)$", log, re.MULTILINE)
        assert match, log
        disconnect = json.loads(match.group(1))[0]["message"]
        assert (disconnect["type"], disconnect["code"]) == ("websocket.disconnect", 1001)
    assert log.index("LIFESPAN SHUTDOWN") > max(log.index(f"END {conn_id}") for conn_id in ids)
    assert "Traceback" not in log
