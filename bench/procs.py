"""Processes: start pinned to a CPU, wait until ready, read CPU and memory, stop by pid.

Everything the harness starts goes through :class:`Launched`, which puts the child in its own
process group and remembers its pid; :func:`stop_all` (run at exit and on SIGINT/SIGTERM) stops
exactly those groups and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

SERVER_CPU = "0"
CLIENT_CPU = "1"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_running: dict[int, Launched] = {}


def free_port() -> int:
    """A port the kernel just handed out on loopback (nothing else binds ports here)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def pinned(cpu: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv]


class Launched:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, argv: Sequence[str], log: Path, cwd: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        self.argv = list(argv)
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.process.pid
        _running[self.pid] = self

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the group (the server and any worker it forked), SIGKILL after ``grace``."""
        if self.pid not in _running:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # anything the server left in its group
        del _running[self.pid]

    def tail(self, lines: int = 5) -> str:
        text = self.log.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])


def stop_all() -> None:
    for launched in list(_running.values()):
        launched.stop(grace=2.0)


def http_ready(port: int, path: str = "/hello") -> bool:
    """True once the server answers a GET with a 2xx status."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = sock.recv(64)
    except OSError:
        return False
    return head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2"))


def wait_ready(server: Launched, port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"server exited with {server.process.returncode}: {server.tail()}")
        if http_ready(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server not ready in time: {server.tail()}")


def _tree(pid: int) -> list[int]:
    """The pid and its descendants (Hypercorn and friends may fork workers)."""
    pids = [pid]
    for current in pids:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(child) for child in children)
    return pids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree, from /proc/PID/stat."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of the process tree, from /proc/PID/statm."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * _PAGE
    return total


def reset_peak_rss(pid: int) -> None:
    """Restart the kernel's peak-RSS counter (VmHWM) for the tree: clear_refs value 5."""
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{member}/clear_refs").write_text("5")


def peak_rss_bytes(pid: int) -> int:
    """Peak RSS of the tree since :func:`reset_peak_rss` (VmHWM, in kB in /proc/PID/status)."""
    total = 0
    for member in _tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
    return total


def _machine_busy() -> float:
    """CPU seconds all cores spent running tasks since boot (/proc/stat user, nice, system, steal).

    Interrupt time is left out: it is mostly this run's own loopback traffic, which the kernel
    does not charge to any process.
    """
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
        int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + steal) / _TICKS


def _own_and_children() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class ForeignLoad:
    """CPU that processes outside this run used while a measurement ran.

    The machine is shared: whatever else runs steals time from the pinned server or client. The
    busy time of the whole machine minus the server's, the harness's and its finished clients'
    is that stolen time, reported as a percentage of one core.
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.started = time.monotonic()
        self.busy = _machine_busy()
        self.ours = _own_and_children() + cpu_seconds(server_pid)

    def percent(self) -> float:
        elapsed = time.monotonic() - self.started
        ours = _own_and_children() + cpu_seconds(self.server_pid) - self.ours
        foreign = _machine_busy() - self.busy - ours
        return max(0.0, foreign) * 100 / elapsed if elapsed else 0.0
