"""Run an app from ``reverse_app.py`` under Hypercorn in a subprocess, on a socket we bound.

The test binds 127.0.0.1 port 0 itself and hands the listening socket to Hypercorn
(``fd://``), so the port is known without parsing logs and no port can be stolen in between.
Hypercorn runs with ``workers = 0`` (no worker subprocess), so the process we start is the
server whose memory the tests read, and with its own ``Server``/``Date`` headers off, so that
Twisted's are the only ones, as on a native Site.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_bytes(self) -> int:
        """Resident memory of the server process, from ``/proc``."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def stop(self) -> int:
        """SIGTERM, as a service manager would; return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def hypercorn(
    app: str, workdir: Path, *, env: dict[str, str] | None = None, ready_path: str = "/loop"
) -> Iterator[Server]:
    """Serve ``reverse_app.py:<app>``; yield once it has answered ``ready_path``."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = workdir / "hypercorn.toml"
    config.write_text(
        f'bind = ["fd://{listener.fileno()}"]\n'
        "workers = 0\n"
        "include_server_header = false\n"
        "include_date_header = false\n"
        "graceful_timeout = 5\n"
    )
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "--config", str(config), f"tests.bridge.reverse_app:{app}"],
            cwd=REPO,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
            env={**os.environ, **(env or {})},
        )
    listener.close()
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_serving(server, ready_path)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _wait_until_serving(server: Server, path: str) -> None:
    # The socket already listens, so a connection waits for Hypercorn to accept it; this only
    # bounds how long the subprocess may take to start.
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.output()}")
        try:
            httpx.get(server.url + path, timeout=READY_TIMEOUT).raise_for_status()
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
