"""W4 upload: one large request body the app counts as it arrives.

Reports throughput, how long after the request head the app saw its first body chunk (the
whole upload, for servers that buffer bodies), and the server's peak memory growth.
"""

from __future__ import annotations

from bench.procs import peak_rss_bytes, reset_peak_rss, rss_bytes
from bench.profiles import Profile
from bench.workloads.common import Column, Target, client_argv, run_client, shell

TITLE = "W4 upload: request body counted by the app as it arrives"
COLUMNS = [
    Column("mb_per_s", "MB/s", 0, higher=True, ratio=True),
    Column("first_chunk_ms", "head to first app chunk ms", 1, higher=False),
    Column("rss_growth_mb", "server RSS growth MB", 1, higher=False),
]


def load_argv(profile: Profile, port: object) -> list[str]:
    return client_argv("upload", "--port", port, "--size", profile.transfer_bytes)


def describe(profile: Profile) -> str:
    return shell(load_argv(profile, "$PORT"))


def measure(target: Target, profile: Profile) -> dict[str, float]:
    pid = target.process.pid
    idle = rss_bytes(pid)
    reset_peak_rss(pid)
    result = run_client(load_argv(profile, target.port), timeout=180)
    return {
        "mb_per_s": float(result["mb_per_s"]),  # type: ignore[arg-type]
        "first_chunk_ms": float(result["first_chunk_ms"]),  # type: ignore[arg-type]
        "rss_growth_mb": (peak_rss_bytes(pid) - idle) / 1e6,
    }
