"""``hybrid serve --workers 2``: both workers answer, a killed worker is replaced, SIGTERM drains.

Real processes on a free loopback port; the supervisor's log names each worker's pid.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.tutorial import BODY
from tests.conftest import HybridProcess, hybrid_argv, running
from tests.servers import wait_for
from tests.tls import self_signed

STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


@pytest.fixture
def pool() -> Iterator[HybridProcess]:
    with running(hybrid_argv("--workers", "2")) as server:
        # Each worker answers for itself in /stats once it serves.
        wait_for(lambda: all(s is not None for s in _stats_workers(server).values()), "both workers to serve")
        yield server
        server.stop()


def _pids(server: HybridProcess) -> dict[int, int]:
    """The latest pid of each worker, from the supervisor's log."""
    return {int(w): int(pid) for w, pid in STARTED.findall(server.log())}


def _worker_of(url: str) -> str:
    """Who answered a request made on a new connection."""
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-worker"]


def _pool_stats(server: HybridProcess) -> dict[str, object]:
    response = httpx.get(f"{server.url}/stats", timeout=10)
    assert response.status_code == 200
    stats: dict[str, object] = response.json()
    return stats


def test_both_workers_serve_and_stats_are_merged(pool: HybridProcess) -> None:
    seen: set[str] = set()
    urls = [f"{pool.url}/twisted/delayed?delay=0.05", f"{pool.url}/asgi/delayed?delay=0.05"] * 4

    def both_answered() -> bool:
        # Bursts of new connections: the kernel hands each to whichever worker accepts first.
        with ThreadPoolExecutor(len(urls)) as executor:
            seen.update(executor.map(_worker_of, urls))
        return seen == {"1", "2"}

    wait_for(both_answered, "requests answered by both workers")
    stats = _pool_stats(pool)
    workers = stats["workers"]
    assert isinstance(workers, dict) and set(workers) == {"1", "2"}
    assert all(workers[w] is not None for w in workers), workers
    for side in ("twisted", "asgi"):
        merged = stats[side]
        assert isinstance(merged, dict)
        assert merged["completed"] == sum(workers[w][side]["completed"] for w in workers)
        assert merged["completed"] >= 1
    assert stats["worker"] in (1, 2)


def test_a_killed_worker_is_replaced(pool: HybridProcess) -> None:
    old = _pids(pool)
    os.kill(old[1], signal.SIGKILL)
    wait_for(lambda: _pids(pool)[1] != old[1], "worker 1 to be restarted")
    assert f"worker 1 (pid {old[1]}) was killed by signal 9; restarting it" in pool.log()
    wait_for(lambda: all(s is not None for s in _stats_workers(pool).values()), "both workers in /stats")
    assert _pids(pool)[2] == old[2]


def _stats_workers(server: HybridProcess) -> dict[str, object]:
    workers = _pool_stats(server)["workers"]
    assert isinstance(workers, dict)
    return workers


def test_sigterm_closes_the_listener_and_drains(pool: HybridProcess) -> None:
    port = int(pool.url.rsplit(":", 1)[1])
    with ThreadPoolExecutor(1) as executor:
        pending = executor.submit(httpx.get, f"{pool.url}/asgi/delayed?delay=5", timeout=30)

        def in_flight() -> bool:
            asgi = _pool_stats(pool)["asgi"]
            return isinstance(asgi, dict) and asgi["in_flight"] == 1

        wait_for(in_flight, "the delayed request to be in flight")
        pool.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: _refused(port), "the listener to close")
        assert not pending.done(), "the listener should close while the request is still draining"
        response = pending.result()
    assert response.status_code == 200
    assert response.content == BODY
    assert pool.proc.wait(timeout=60) == 0
    log = pool.log()
    assert "Traceback" not in log, log
    assert re.search(r"worker 1 \(pid \d+\) exited normally", log), log
    assert re.search(r"worker 2 \(pid \d+\) exited normally", log), log


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_options_no_worker_can_serve_stop_the_supervisor() -> None:
    """A bad --mount makes every worker exit 2; the supervisor stops with 2 instead of looping."""
    result = subprocess.run(
        [*hybrid_argv("--workers", "2", "--mount", "/x=no_such_module:app")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot serve these options" in result.stdout
    assert "no_such_module" in result.stderr


def test_tls_endpoints_are_refused_with_workers(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    result = subprocess.run(
        [*hybrid_argv("--workers", "2", "--listen", f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "terminate TLS in front" in result.stderr
    assert "can share tcp:, tcp6: and systemd: TCP endpoints" in result.stderr


def test_unix_sockets_are_refused_with_workers(tmp_path: Path) -> None:
    """Twisted unlinks an adopted unix socket's path when a worker stops: not shareable."""
    path = tmp_path / "hybrid.sock"
    result = subprocess.run(
        [*hybrid_argv("--workers", "2", "--listen", f"unix:{path}")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "can share tcp:, tcp6: and systemd: TCP endpoints" in result.stderr
    assert not path.exists()
