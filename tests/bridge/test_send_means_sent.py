"""ASGI: "Protocol servers must flush any data passed to them into the send buffer before
returning from a send call" -- so a background task that computes without awaiting cannot
hold back the response that was sent before it started (issue 15, item 1)."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from tests.servers import run_server, wait_for
from tests.tls import self_signed

HERE = Path(__file__).parent


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_response_arrives_while_a_cpu_bound_background_task_still_runs(tmp_path: Path, scheme: str) -> None:
    """The whole response is at the client before the background task (which never awaits) ends.

    ``https`` is HTTP/1.1 over an ``ssl:`` endpoint (the reactor's listenSSL).
    """
    argv = [str(HERE / "background_server.py"), str(tmp_path)]
    verify: ssl.SSLContext | bool = False
    if scheme == "https":
        cert, key = self_signed(tmp_path)
        argv += [str(cert), str(key)]
        verify = ssl.create_default_context(cafile=str(cert))
    with run_server(argv) as server:
        with httpx.Client(timeout=60, verify=verify) as client:
            response = client.get(f"{scheme}://127.0.0.1:{server.port}/")
        assert (response.status_code, response.text) == (200, "done")
        # The task only ends when released (or at its 20-s limit): if the bytes had waited
        # for the loop to turn, the task would be over by now.
        assert not (tmp_path / "crunch-done").exists()
        (tmp_path / "release").touch()
        wait_for(lambda: (tmp_path / "crunch-done").exists(), "the background task to end")
        assert (tmp_path / "crunch-done").read_text() == "released"
