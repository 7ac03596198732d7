"""Server processes for the suite, and the ``Front`` a test talks to.

A server is ``python -m tests.conformance.serve_<kind>`` in its own process group,
with its output in a file (a pipe could fill up and stall it).  It is ready
when it prints ``LISTENING {json}``; ``Server.kill`` ends the group by its id.
A ``Front`` is one mount of the probe on one server: where to send requests,
and how to read the probe's records back.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conformance import wire
from tests.conformance.script import Step, probe_headers

REPO = Path(__file__).resolve().parents[2]
READY = re.compile(rb"^LISTENING (\{.*\})$", re.MULTILINE)
PR_SET_PDEATHSIG = 1
#: How long any one condition may take to become true before a test fails.
DEADLINE = 15.0

T = TypeVar("T")
#: The fronts every shared test runs against: the bridge on each HTTP/1.1 parser, and Hypercorn.
KINDS = ("bridge", "bridge-httptools", "hypercorn")


def wait_for(predicate: Callable[[], T | None], what: str, deadline: float = DEADLINE) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    end = time.monotonic() + deadline
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:g} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, Any]
    #: A mount of the probe on the plain-HTTP port, for control requests.
    control_mount: str = ""
    _control: httpx.Client | None = None

    def control(self, command: str) -> Any:
        """Ask the probe's control endpoint, on one kept-alive connection.

        One connection, not one per poll: servers keep a closed connection's
        tasks and timers around for a while, which would swamp the very
        counts the tests compare.
        """
        if self._control is None:
            base = f"http://127.0.0.1:{self.info['http']}{self.control_mount}/_ctl/"
            self._control = httpx.Client(base_url=base, timeout=DEADLINE)
        response = self._control.get(command)
        response.raise_for_status()
        return wire.loads(response.content)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_mark(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace")

    def rss(self) -> int:
        """Resident set size in bytes, from ``/proc/<pid>/status``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, deadline: float = DEADLINE) -> int:
        return self.proc.wait(timeout=deadline)

    def kill(self) -> None:
        if self._control is not None:
            self._control.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE)


def die_with_parent() -> None:
    """In the child: be killed if the test process dies without its teardown (Linux prctl)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def launch(
    kind: str, args: Sequence[str], *, control_mount: str, env: dict[str, str] | None = None, ready: bool = True
) -> Server:
    """Start a server script; with ``ready``, return only once it listens."""
    fd, name = tempfile.mkstemp(prefix=f"conformance-{kind}-", suffix=".log")
    log_path = Path(name)
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    script, _, parser = kind.partition("-")  # bridge-httptools: serve_bridge --http httptools
    proc = subprocess.Popen(
        [sys.executable, "-m", f"tests.conformance.serve_{script}", *args, *(["--http", parser] if parser else [])],
        stdout=fd,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {}), "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    os.close(fd)
    server = Server(kind, proc, log_path, {}, control_mount)
    if ready:
        try:
            server.info = wait_until_listening(server)
        except BaseException:
            server.kill()
            raise
    return server


def wait_until_listening(server: Server) -> dict[str, Any]:
    def listening() -> dict[str, Any] | None:
        match = READY.search(server.log_path.read_bytes())
        if match:
            info: dict[str, Any] = json.loads(match.group(1))
            return info
        if server.proc.poll() is not None:
            raise AssertionError(f"{server.kind} server exited with {server.proc.returncode}:\n{server.log()}")
        return None

    return wait_for(listening, f"the {server.kind} server to listen", deadline=30)


@dataclass
class Front:
    """One mount of the probe: ``kind`` is one of ``KINDS``."""

    kind: str
    server: Server
    port: int
    mount: str
    scheme: str = "http"

    host = "127.0.0.1"

    @classmethod
    def of(cls, server: Server) -> Front:
        """The ``/mnt`` mount on a server's plain-HTTP port."""
        return cls(server.kind, server, server.info["http"], "/mnt")

    def __str__(self) -> str:
        return f"{self.kind}{self.mount or '/'}"

    def target(self, path: str = "/") -> str:
        """The request target for ``path`` under this mount."""
        return f"{self.mount}{path}"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.target(path)}"

    # -- talking to the probe ---------------------------------------------------

    def record(self, rid: str) -> dict[str, Any]:
        record: dict[str, Any] = self.server.control(f"record/{rid}")
        return record

    def wait_record(
        self, rid: str, predicate: Callable[[dict[str, Any]], bool], what: str, deadline: float = DEADLINE
    ) -> dict[str, Any]:
        """Poll the record of ``rid`` until ``predicate`` holds for it."""

        def check() -> dict[str, Any] | None:
            try:
                record = self.record(rid)
            except httpx.HTTPStatusError:
                return None  # the app has not been called yet
            return record if predicate(record) else None

        return wait_for(check, f"{what} (request {rid} on {self})", deadline)

    def wait_done(self, rid: str, deadline: float = DEADLINE) -> dict[str, Any]:
        return self.wait_record(rid, lambda r: r["done"], "the app to finish", deadline)

    def wait_gate(self, rid: str, gate: str) -> dict[str, Any]:
        return self.wait_record(rid, lambda r: r["waiting"] == gate, f"the app to wait on gate {gate!r}")

    def release(self, gate: str) -> None:
        self.server.control(f"release/{gate}")

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.server.control("stats")
        return stats

    def events(self) -> list[str]:
        events: list[str] = self.server.control("events")
        return events

    def get(self, path: str, rid: str, *steps: Step, **kwargs: Any) -> httpx.Response:
        """One scripted request with a fresh httpx client."""
        return httpx.get(self.url(path), headers=probe_headers(rid, *steps), timeout=DEADLINE, **kwargs)


#: The ``spawn`` fixture: start a dedicated server (``kind``, ``lifespan=``, ``ready=``).
Spawn = Callable[..., Server]
