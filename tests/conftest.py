"""Shared fixtures: a real ``hybrid serve`` process on a free port, stopped after the test.

``hybrid_server(*args)`` starts ``python -m app serve --listen tcp:0:interface=127.0.0.1 *args``,
reads the port from the startup line (``hybrid serving on http://127.0.0.1:PORT ...``), waits until
``/healthz`` answers, and stops the process (SIGTERM, then SIGKILL after a deadline) at teardown.
Output goes to a file, not a pipe that could fill up and stall the server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import LOG_TAIL, wait_for
from tests.tls import self_signed

REPO = Path(__file__).resolve().parents[1]
SERVING = re.compile(r"hybrid serving on (.+?) with (\S+)")
LOCAL = "tcp:0:interface=127.0.0.1"


@dataclass
class HybridProcess:
    """A running server process (``hybrid serve`` or ``twistd hybrid``) and its output."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    addresses: list[str]
    reactor: str

    @property
    def url(self) -> str:
        """The first HTTP address it listens on."""
        return next(a for a in self.addresses if a.startswith("http"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM, deadline: float = 20.0) -> int:
        """Send ``sig`` and return the exit status; fails (after killing it) if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                raise AssertionError(f"server ignored {sig.name}:\n{self.log()}") from None
        return self.proc.returncode


@contextmanager
def running(
    argv: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, pass_fds: Sequence[int] = ()
) -> Iterator[HybridProcess]:
    """Run ``argv`` until the block ends; yields once it logged its addresses and is healthy."""
    fd, name = tempfile.mkstemp(prefix="hybrid-", suffix=".log")
    log = Path(name)
    with os.fdopen(fd, "wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,
            pass_fds=pass_fds,
        )
    try:
        found: list[re.Match[str]] = []

        def serving() -> bool:
            match = SERVING.search(log.read_text(errors="replace"))
            if match:
                found.append(match)
                return True
            if proc.poll() is not None:
                raise AssertionError(f"{argv} exited with {proc.returncode}:\n{log.read_text()}")
            return False

        try:
            wait_for(serving, f"{argv} to listen")
            server = HybridProcess(proc, log, found[0].group(1).split(), found[0].group(2))
            if any(a.startswith("http://") for a in server.addresses):
                wait_for(lambda: _healthy(server.url), f"{server.url}/healthz to answer")
        except AssertionError as e:
            raise AssertionError(f"{e}; server output:\n{log.read_text(errors='replace')}") from None
        yield server
    except BaseException:
        # A failure inside the block: its server's side of the story goes to the captured output.
        print(f"--- {argv} output ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.unlink(missing_ok=True)


def _healthy(url: str) -> bool:
    """Any HTTP answer counts: with ``--mount /=...`` the mounted app may not know /healthz."""
    try:
        httpx.get(f"{url}/healthz", timeout=5)
    except httpx.TransportError:
        return False
    return True


#: Run the suite's servers on one parser or loop (``HYBRID_TEST_HTTP=twisted``, ``HYBRID_TEST_LOOP=asyncio``);
#: unset, ``hybrid serve`` picks (``auto``). A test that names ``--http`` or ``--loop`` itself keeps its choice.
TEST_CHOICES = {"--http": os.environ.get("HYBRID_TEST_HTTP"), "--loop": os.environ.get("HYBRID_TEST_LOOP")}


def hybrid_argv(*args: str) -> list[str]:
    """``python -m app serve`` with ``args``, listening on a free loopback port unless told."""
    listen = [] if "--listen" in args else ["--listen", LOCAL]
    chosen = [arg for option, value in TEST_CHOICES.items() if value and option not in args for arg in (option, value)]
    return [sys.executable, "-m", "app", "serve", *listen, *chosen, *args]


@pytest.fixture
def hybrid_server() -> Iterator[Callable[..., HybridProcess]]:
    """Start ``hybrid serve *args`` (on a free port unless ``--listen`` is given); stopped at teardown."""
    with ExitStack() as stack:

        def start(*args: str) -> HybridProcess:
            return stack.enter_context(running(hybrid_argv(*args)))

        yield start


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, as (cert.pem, key.pem)."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the log of every server fixture the test used (their tracebacks are there)."""
    report: pytest.TestReport = yield
    if report.failed:
        for name, value in getattr(item, "funcargs", {}).items():
            # A server process, or a wrapper holding one (tests/hardening's Server).
            log_path = getattr(value, "log_path", None) or getattr(getattr(value, "process", None), "log_path", None)
            if isinstance(log_path, Path) and log_path.exists():
                report.sections.append((f"server log ({name})", log_path.read_text(errors="replace")[-LOG_TAIL:]))
    return report
