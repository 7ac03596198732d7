"""W3 download: one large response in 64 KiB chunks, read at full speed (MB/s) or slowly.

The slow reader takes 1 MB/s for a few seconds and then leaves: a server with flow control keeps
its memory flat, one without buffers whatever the app produces in the meantime. Slow readers of
every server run at once (one rep at a time): they measure memory, not speed, and this keeps the
rep to the reader's duration instead of that times the number of servers.
"""

from __future__ import annotations

from bench.procs import peak_rss_bytes, reset_peak_rss, rss_bytes
from bench.profiles import Profile
from bench.workloads.common import Column, Target, client_argv, run_client, shell

TITLE = "W3 download: 64 KiB chunks, full-speed reader"
COLUMNS = [
    Column("mb_per_s", "MB/s", 0, higher=True, ratio=True),
    Column("rss_growth_mb", "server RSS growth MB", 1, higher=False),
]
SLOW_TITLE = "W3 slow reader: the same response read at a fixed slow rate"
SLOW_COLUMNS = [
    Column("rss_growth_mb", "server RSS growth MB", 1, higher=False),
    Column("read_mb", "MB read", 1, higher=True),
]


def load_argv(profile: Profile, port: object) -> list[str]:
    return client_argv("download", "--port", port, "--size", profile.transfer_bytes)


def slow_argv(profile: Profile, port: object) -> list[str]:
    return client_argv(
        "download",
        "--port",
        port,
        "--size",
        profile.transfer_bytes,
        "--rate",
        f"{profile.slow_rate:g}",
        "--seconds",
        f"{profile.slow_seconds:g}",
    )


def describe(profile: Profile) -> str:
    return shell(load_argv(profile, "$PORT"))


def describe_slow(profile: Profile) -> str:
    return shell(slow_argv(profile, "$PORT"))


def measure(target: Target, profile: Profile) -> dict[str, float]:
    pid = target.process.pid
    idle = rss_bytes(pid)
    reset_peak_rss(pid)
    result = run_client(load_argv(profile, target.port), timeout=120)
    return {
        "mb_per_s": float(result["mb_per_s"]),  # type: ignore[arg-type]
        "rss_growth_mb": (peak_rss_bytes(pid) - idle) / 1e6,
    }


def slow_start(target: Target) -> int:
    """Note the idle memory of a server about to get a slow reader; returns the baseline."""
    idle = rss_bytes(target.process.pid)
    reset_peak_rss(target.process.pid)
    return idle


def slow_finish(target: Target, idle: int, result: dict[str, object]) -> dict[str, float]:
    return {
        "rss_growth_mb": (peak_rss_bytes(target.process.pid) - idle) / 1e6,
        "read_mb": float(result["bytes"]) / 1e6,  # type: ignore[arg-type]
    }
