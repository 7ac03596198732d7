"""Start ``hypercorn module:app`` or ``uvicorn module:app`` from their command lines, as users do.

Default options except the listening socket: the test binds 127.0.0.1 port 0 itself and hands
the socket over (``--bind fd://N``, ``--fd N``), so the port is known without parsing logs.
Hypercorn keeps its default of one worker process, so the app module is imported in a spawned
worker before that worker's loop exists -- the case the reverse adapter must handle.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: ``uvicorn`` with its defaults runs on uvloop (in the test extra); ``uvicorn-asyncio`` is
#: ``uvicorn --loop asyncio``.
SERVERS = ("hypercorn", "uvicorn", "uvicorn-asyncio")
READY_TIMEOUT = 30.0


@dataclass
class CLIServer:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> bool:
        """SIGTERM, as a service manager would; whether the server shut down cleanly.

        Uvicorn re-raises the signal it caught once it has shut down, so its clean exit status
        is -SIGTERM, with lifespan shutdown logged as complete.
        """
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=30)
        if self.name.startswith("uvicorn"):
            return status == -signal.SIGTERM and "Application shutdown complete." in self.output()
        return status == 0


def argv(server: str, target: str, fd: int) -> list[str]:
    if server == "hypercorn":
        return [str(BIN / "hypercorn"), "--bind", f"fd://{fd}", target]
    loop = ["--loop", "asyncio"] if server == "uvicorn-asyncio" else []
    return [str(BIN / "uvicorn"), *loop, "--fd", str(fd), target]


@contextmanager
def serving(
    server: str, target: str, *, env: dict[str, str] | None = None, cwd: Path = REPO, ready_path: str | None = "/"
) -> Iterator[CLIServer]:
    """Run ``server target`` in ``cwd``; yield once ``ready_path`` answered (any status)."""
    listener = socket.create_server(("127.0.0.1", 0))
    fd, name = tempfile.mkstemp(prefix=f"{server}-", suffix=".log")
    log = Path(name)
    with os.fdopen(fd, "wb") as out:
        process = subprocess.Popen(
            argv(server, target, listener.fileno()),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    running = CLIServer(server, url, process, log)
    try:
        if ready_path is not None:
            _wait_until_serving(running, ready_path)
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.unlink(missing_ok=True)


def _wait_until_serving(server: CLIServer, path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.output()}")
        try:
            httpx.get(server.url + path, timeout=READY_TIMEOUT)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_for_exit(server: CLIServer) -> int:
    """The exit status of a server expected to stop on its own (failed startup)."""
    return server.process.wait(timeout=READY_TIMEOUT)
