"""``hybrid serve --server hypercorn``: the whole site under Hypercorn, Twisted as a guest.

The endpoint tests (``test_endpoints.py``) run against this front too; here is what is
specific to it: the tutorial's concurrency claim on both sides, abandonment, and the process.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from app.tutorial import BODY
from tests.conftest import LOCAL, hybrid_argv, running
from tests.servers import wait_for

CONCURRENCY = 50


async def _fire(url: str, paths: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.get(path) for path in paths))


def test_fifty_concurrent_requests_per_side_under_hypercorn() -> None:
    with running(hybrid_argv("--server", "hypercorn", "--delay", "2")) as server:
        assert server.reactor == "bridge._reactor.BridgeReactor"
        paths = [f"/{side}/delayed" for side in ("twisted", "asgi") for _ in range(CONCURRENCY)]
        responses = asyncio.run(_fire(server.url, paths))
        assert [(r.status_code, r.content) for r in responses] == [(200, BODY)] * len(paths)
        stats = httpx.get(f"{server.url}/stats").json()
        for side in ("twisted", "asgi"):
            assert stats[side]["peak_in_flight"] == CONCURRENCY, stats
            assert (stats[side]["completed"], stats[side]["in_flight"]) == (CONCURRENCY, 0)
        assert server.stop() == 0


def test_abandoned_native_request_is_counted_under_hypercorn() -> None:
    """The native resource's notifyFinish errback fires when the client leaves (it cancels the
    callLater; tests/bridge/test_reverse.py shows no delayed call is left)."""
    with running(hybrid_argv("--server", "hypercorn")) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as client:
            client.sendall(b"GET /twisted/delayed?delay=30 HTTP/1.1\r\nHost: test\r\n\r\n")
            wait_for(lambda: httpx.get(f"{server.url}/stats").json()["twisted"]["in_flight"] == 1, "in flight")
        wait_for(lambda: httpx.get(f"{server.url}/stats").json()["twisted"]["abandoned"] == 1, "abandoned")
        assert server.stop(signal.SIGINT) == 0


MOUNTABLES = "tests.app.mountables"


def test_mounts_under_hypercorn() -> None:
    """ASGI apps get their own lifespan and state; resources and WSGI apps join the native tree."""
    mounts = ["--mount", f"/extra={MOUNTABLES}:asgi_app", "--mount", f"/old/legacy={MOUNTABLES}:resource"]
    mounts += ["--mount", "/flask=tests.app.wsgi_mountables:flask_app"]
    argv = hybrid_argv("--server", "hypercorn", *mounts)
    with running(argv) as server:
        assert httpx.get(f"{server.url}/flask/greet/ada").text == "hello ada"
        assert httpx.get(f"{server.url}/flask/").json()["script_name"] == "/flask"
        extra = httpx.get(f"{server.url}/extra/x").json()
        assert extra == {"path": "/extra/x", "root_path": "/extra", "started": True}
        assert httpx.get(f"{server.url}/old/legacy").text == "hello from twisted at /old/legacy"
        assert httpx.get(f"{server.url}/twisted/delayed?delay=0").content == BODY
        assert server.stop() == 0
        assert "mountables.asgi_app: lifespan shutdown" in server.log()


def test_mount_at_root_replaces_the_site_under_hypercorn() -> None:
    """Other mounts still apply under it, as on the Twisted front."""
    mounts = ["--mount", f"/={MOUNTABLES}:asgi_app", "--mount", f"/legacy={MOUNTABLES}:resource"]
    with running(hybrid_argv("--server", "hypercorn", *mounts)) as server:
        assert httpx.get(f"{server.url}/any/path").json() == {"path": "/any/path", "root_path": "", "started": True}
        assert httpx.get(f"{server.url}/legacy").text == "hello from twisted at /legacy"
        assert server.stop() == 0


@pytest.mark.parametrize("front", ["twisted", "hypercorn"])
def test_mount_imports_from_the_current_directory(tmp_path: Path, front: str) -> None:
    """As ``uvicorn module:app`` does: no PYTHONPATH, the ``hybrid`` script, a module beside us."""
    (tmp_path / "beside.py").write_text(
        "from twisted.web.static import Data\nresource = Data(b'found in the current directory', 'text/plain')\n"
    )
    hybrid = str(Path(sys.executable).parent / "hybrid")
    argv = [hybrid, "serve", "--listen", LOCAL, "--server", front, "--mount", "/here=beside:resource"]
    env = {"PYTHONPATH": ""}
    with running(argv, cwd=tmp_path, env=env) as server:
        assert httpx.get(f"{server.url}/here").text == "found in the current directory"


def test_two_workers_under_hypercorn() -> None:
    """Both workers answer (X-Worker), /stats is the pool's, SIGTERM stops them all."""
    argv = hybrid_argv("--server", "hypercorn", "--workers", "2", "--mount", f"/extra={MOUNTABLES}:asgi_app")
    with running(argv) as server:
        seen: set[str] = set()

        def both_answered() -> bool:
            with httpx.Client() as client:  # a new connection each time: the kernel picks a worker
                response = client.get(f"{server.url}/extra/x")
            assert response.json()["started"] is True
            seen.add(response.headers["x-worker"])
            return seen == {"1", "2"}

        wait_for(both_answered, "answers from both workers")
        wait_for(lambda: None not in httpx.get(f"{server.url}/stats").json()["workers"].values(), "pooled /stats")
        stats = httpx.get(f"{server.url}/stats").json()
        assert set(stats["workers"]) == {"1", "2"}
        assert server.stop() == 0
        log = server.log()
    assert log.count("under Hypercorn") == 2
    assert "worker 1 (pid" in log and "worker 2 (pid" in log
