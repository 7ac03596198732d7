"""Where a third-party app is served for a test: ``hybrid serve --mount`` or Hypercorn, at ``/`` or ``/mnt``.

Hypercorn is the reference: it is the server Quart ships with and one of Django's documented ASGI
servers, it serves WSGI apps too, and ``--root-path`` gives the sub-path case a like-for-like
twin (the ASGI scope then has ``root_path="/mnt"`` and a ``path`` that includes it, as the bridge
gives a mount at ``/mnt``). It runs from its own command line with ``--workers 0``: the same serving
code in the one process, without spawning a worker, so it starts three times faster and a kill of its
process group stops all of it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, hybrid_argv, running
from tests.servers import wait_for

SUBPATH = "/mnt"
RUNNING_ON = re.compile(r"Running on (https?://127\.0\.0\.1:\d+)")


@dataclass(frozen=True)
class Placement:
    """A server and a prefix: one way of serving an app that the tests compare with the others."""

    server: str  # "hybrid" or "hypercorn"
    prefix: str  # "" (the root) or SUBPATH

    def __str__(self) -> str:
        return f"{self.server}-{'mnt' if self.prefix else 'root'}"


PLACEMENTS = [Placement(server, prefix) for server in ("hybrid", "hypercorn") for prefix in ("", SUBPATH)]


@dataclass
class Front:
    """A running server with the app at ``prefix``: where to send requests, and how to stop it."""

    placement: Placement
    origin: str  # http://127.0.0.1:PORT, or https://
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def prefix(self) -> str:
        return self.placement.prefix

    @property
    def url(self) -> str:
        """The app's base URL: the origin and the prefix, no trailing slash."""
        return self.origin + self.prefix

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, deadline: float = 20.0) -> int:
        """SIGTERM, as a service manager stops a server; the exit status (fails if it hangs)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.placement} ignored SIGTERM:\n{self.log()}") from None


def command(placement: Placement, target: str, tls: tuple[Path, Path] | None = None) -> list[str]:
    """The command line that serves ``module:attr`` as ``placement`` says, on a free loopback port.

    With ``tls`` (certificate and key files) it serves HTTPS, and HTTP/2 to clients that offer it.
    """
    if placement.server == "hybrid":
        listen = ["--listen", f"ssl:0:interface=127.0.0.1:privateKey={tls[1]}:certKey={tls[0]}"] if tls else []
        return hybrid_argv(*listen, "--mount", f"{placement.prefix or '/'}={target}")
    root_path = ["--root-path", placement.prefix] if placement.prefix else []
    certificate = ["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls else []
    bind = ["--workers", "0", "--bind", "127.0.0.1:0", *certificate]
    return [sys.executable, "-m", "hypercorn", *bind, *root_path, target]


@contextmanager
def serve(placement: Placement, target: str, tls: tuple[Path, Path] | None = None) -> Iterator[Front]:
    """Serve ``module:attr`` as ``placement`` says until the block ends; the process is always reaped."""
    argv = command(placement, target, tls)
    if placement.server == "hybrid":
        with running(argv) as process:
            yield Front(placement, process.url, process.proc, process.log_path)
    else:
        with _hypercorn(placement, argv) as front:
            yield front


@contextmanager
def _hypercorn(placement: Placement, argv: list[str]) -> Iterator[Front]:
    fd, name = tempfile.mkstemp(prefix="hypercorn-", suffix=".log")
    log_path = Path(name)
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)
    try:
        origin: list[str] = []

        def listening() -> bool:
            match = RUNNING_ON.search(log_path.read_text(errors="replace"))
            if match:
                origin.append(match.group(1))
                return True
            if proc.poll() is not None:
                raise AssertionError(f"{argv} exited with {proc.returncode}:\n{log_path.read_text()}")
            return False

        wait_for(listening, f"{argv} to listen")
        yield Front(placement, origin[0], proc, log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log_path.unlink(missing_ok=True)
