"""Start real servers as subprocesses for tests, and always stop them.

A server script prints ``LISTENING <port>`` once it accepts connections; its
output goes to a file (not a pipe that could fill up and stall it), which we
poll with a deadline.  On exit the whole process group is killed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

READY = re.compile(rb"LISTENING (\d+)")
#: How much of a server's output a failing test shows.
LOG_TAIL = 8000


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for(predicate: object, what: str, deadline: float = 30.0) -> None:
    """Poll ``predicate()`` until true; fail with ``what`` after ``deadline`` seconds."""
    assert callable(predicate)
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request``, then read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        received = []
        while chunk := sock.recv(65536):
            received.append(chunk)
    return b"".join(received)


@contextmanager
def run_server(
    argv: Sequence[str], *, env: dict[str, str] | None = None, deadline: float = 30.0
) -> Iterator[RunningServer]:
    """Run ``python argv...`` until the block ends; yields once it is listening."""
    log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
        )
    try:
        port: list[int] = []

        def ready() -> bool:
            match = READY.search(log.read_bytes())
            if match:
                port.append(int(match.group(1)))
                return True
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            return False

        wait_for(ready, f"{argv} to listen", deadline)
        yield RunningServer(proc, port[0], log)
    except BaseException:
        # A failure inside the block: its server's side of the story goes to the captured output.
        print(f"--- {argv} output ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
        raise
    finally:
        # The whole group, even if its leader already exited: it may have children.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.unlink(missing_ok=True)
