"""What the workloads share: the running server they measure, client runs, table columns."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.procs import CLIENT_CPU, Launched, pinned

ROOT = Path(__file__).resolve().parents[2]


class WorkloadError(Exception):
    """A run that produced no figures: the message goes into the results table."""


@dataclass(frozen=True)
class Target:
    """A server that answered its readiness probe: its name, port and process."""

    name: str
    port: int
    process: Launched


@dataclass(frozen=True)
class Column:
    """One figure of a workload's table. ``higher`` says which direction is better."""

    key: str
    label: str
    digits: int
    higher: bool
    ratio: bool = False


def client_argv(module: str, *args: object) -> list[str]:
    return pinned(CLIENT_CPU, [sys.executable, "-m", f"bench.clients.{module}", *map(str, args)])


def run_client(argv: list[str], timeout: float) -> dict[str, object]:
    """Run a load client to completion and return the JSON object it printed."""
    try:
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise WorkloadError(f"client still running after {timeout:.0f} s") from exc
    if done.returncode:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        raise WorkloadError(f"client failed: {lines[-1][:200]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def shell(argv: list[str]) -> str:
    """A command as one would type it from the repository root."""
    return " ".join(argv).replace(sys.executable, ".venv/bin/python")
