"""ASGI: "Protocol servers must flush any data passed to them into the send buffer before
returning from a send call" -- so a background task that computes without awaiting cannot
hold back the response that was sent before it started (issue 15, item 1)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.servers import run_server, wait_for

HERE = Path(__file__).parent


def test_response_arrives_while_a_cpu_bound_background_task_still_runs(tmp_path: Path) -> None:
    """The whole response is at the client before the background task (which never awaits) ends."""
    with run_server([str(HERE / "background_server.py"), str(tmp_path)]) as server:
        with httpx.Client(timeout=60) as client:
            response = client.get(f"{server.url}/")
        assert (response.status_code, response.text) == (200, "done")
        # The task only ends when released (or at its 20-s limit): if the bytes had waited
        # for the loop to turn, the task would be over by now.
        assert not (tmp_path / "crunch-done").exists()
        (tmp_path / "release").touch()
        wait_for(lambda: (tmp_path / "crunch-done").exists(), "the background task to end")
        assert (tmp_path / "crunch-done").read_text() == "released"
