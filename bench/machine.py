"""A description of the machine and the software a run measured, for the results file."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = [
    "twisted",
    "starlette",
    "anyio",
    "hypercorn",
    "h11",
    "wsproto",
    "uvicorn",
    "httptools",
    "uvloop",
    "websockets",
    "daphne",
    "autobahn",
    "txasgiresource",
    "asgiref",
]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _command(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""


def describe() -> list[tuple[str, str]]:
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [
        ("CPU", _cpu_model()),
        ("Cores", f"{os.cpu_count()} (server pinned to CPU 0, load generators to CPU 1)"),
        ("Memory", f"{memory_kb / 1024 / 1024:.1f} GiB"),
        ("Kernel", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("wrk", _command(["wrk", "--version"])),
        ("Packages", ", ".join(versions)),
        ("Repository", _command(["git", "log", "-1", "--format=%h %s"])),
    ]
