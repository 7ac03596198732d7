"""The listen backlog: as many as --max-connections on every listener, unless the endpoint string says.

Read back from the kernel with ``ss``: for a listening socket its Send-Q column is the backlog
(capped by ``net.core.somaxconn``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from app.limits import with_backlog
from tests.conftest import HybridProcess

Start = Callable[..., HybridProcess]
SOMAXCONN = int(Path("/proc/sys/net/core/somaxconn").read_text())


def listen_backlog(server: HybridProcess) -> int:
    port = server.url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    (line,) = out.splitlines()
    return int(line.split()[2])


@pytest.mark.parametrize("front", ["twisted", "hypercorn"])
def test_default_backlog_fits_the_connection_limit(hybrid_server: Start, front: str) -> None:
    server = hybrid_server("--server", front, "--max-connections", "300")
    assert listen_backlog(server) == min(300, SOMAXCONN)


def test_default_backlog_with_workers(hybrid_server: Start) -> None:
    server = hybrid_server("--workers", "2", "--max-connections", "300")
    assert listen_backlog(server) == min(300, SOMAXCONN)
    assert server.stop() == 0  # forwarded to the workers, which drain and exit with it


@pytest.mark.parametrize("front", ["twisted", "hypercorn"])
def test_the_endpoint_string_wins(hybrid_server: Start, front: str) -> None:
    server = hybrid_server("--server", front, "--listen", "tcp:0:interface=127.0.0.1:backlog=77")
    assert listen_backlog(server) == 77


def test_with_backlog_leaves_what_it_cannot_change() -> None:
    assert with_backlog("tcp:8080:interface=127.0.0.1", 10) == "tcp:8080:interface=127.0.0.1:backlog=10"
    assert with_backlog("unix:/run/h.sock", 10) == "unix:/run/h.sock:backlog=10"
    assert with_backlog("tcp:8080:backlog=5", 10) == "tcp:8080:backlog=5"
    assert with_backlog("systemd:domain=INET:index=0", 10) == "systemd:domain=INET:index=0"
