"""Socket activation: ``hybrid serve --listen systemd:domain=INET:index=0`` on a socket passed
the way systemd passes it, alone and with ``--workers`` (the unit in deploy/systemd).

systemd binds the socket, starts the service with it as file descriptor 3, and sets
``LISTEN_FDS``, ``LISTEN_FDNAMES`` and ``LISTEN_PID`` -- the last must be the service's own pid,
which only the process itself knows before it runs the program: hence the exec wrapper.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import HybridProcess, running
from tests.servers import wait_for

#: Moves the descriptor given as the first argument to 3, sets the variables, and becomes the
#: program named by the other arguments (what systemd does between fork and exec).
SYSTEMD_LIKE = (
    "import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); fd == 3 or os.close(fd); "
    "os.environ.update(LISTEN_FDS='1', LISTEN_FDNAMES='http', LISTEN_PID=str(os.getpid())); "
    "os.execv(sys.argv[2], sys.argv[2:])"
)


@contextmanager
def activated(*serve_args: str) -> Iterator[tuple[HybridProcess, int]]:
    """``hybrid serve *serve_args`` on a socket bound here; yields the server and the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    argv = [
        sys.executable,
        "-c",
        SYSTEMD_LIKE,
        str(listener.fileno()),
        sys.executable,
        "-m",
        "app",
        "serve",
        "--listen",
        "systemd:domain=INET:index=0",
        *serve_args,
    ]
    try:
        with running(argv, pass_fds=(listener.fileno(),)) as server:
            # The service holds the socket now; closing ours is what systemd cannot do, and
            # shows the server is not relying on it.
            listener.close()
            yield server, port
            assert server.stop() == 0
    finally:
        listener.close()


@pytest.mark.parametrize("workers", [(), ("--workers", "2")], ids=["one-process", "two-workers"])
def test_serves_on_the_inherited_socket(workers: tuple[str, ...]) -> None:
    with activated(*workers) as (server, port):
        assert server.url == f"http://127.0.0.1:{port}"
        response = httpx.get(f"http://127.0.0.1:{port}/twisted/delayed?delay=0", timeout=10)
        assert response.status_code == 200
        if workers:
            seen: set[str] = set()

            def both() -> bool:
                # A burst of new connections: each goes to whichever worker accepts first.
                with ThreadPoolExecutor(8) as executor:
                    answers = executor.map(httpx.get, [f"http://127.0.0.1:{port}/healthz"] * 8)
                    seen.update(a.headers["x-worker"] for a in answers)
                return seen == {"1", "2"}

            wait_for(both, "both workers to answer on the inherited socket")


def test_without_listen_pid_the_socket_is_not_taken() -> None:
    """systemd's guard: descriptors meant for another pid are ignored, with a clear error."""
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        wrong_pid = SYSTEMD_LIKE.replace("str(os.getpid())", "'1'")
        argv = [sys.executable, "-c", wrong_pid, str(listener.fileno()), sys.executable, "-m", "app", "serve"]
        argv += ["--listen", "systemd:domain=INET:index=0"]
        result = subprocess.run(
            argv, pass_fds=(listener.fileno(),), capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "--listen systemd:domain=INET:index=0" in result.stderr
    finally:
        listener.close()
