"""W2 the tutorial at scale: thousands of connections each holding a delayed request.

The server's memory is sampled idle (after a warm-up request) and at its peak during the run
(the kernel's VmHWM, reset just before); the difference divided by the peak number of requests
held at once is the memory one held request costs. CPU time is read around the whole run.
"""

from __future__ import annotations

from bench.procs import cpu_seconds, http_ready, peak_rss_bytes, reset_peak_rss, rss_bytes
from bench.profiles import Profile
from bench.workloads.common import Column, Target, WorkloadError, client_argv, run_client, shell

TITLE = "W2 the tutorial at scale: connections each repeatedly requesting a delayed response"
COLUMNS = [
    Column("completion_ratio", "completion vs ideal", 3, higher=True),
    Column("errors", "errors", 0, higher=False),
    Column("timeouts", "timeouts", 0, higher=False),
    Column("p99_over_delay_ms", "p99 - delay ms", 1, higher=False),
    Column("cpu_ms_per_req", "server CPU ms/req", 3, higher=False, ratio=True),
    Column("rss_kb_per_held", "RSS kB per held request", 2, higher=False, ratio=True),
    Column("peak_inflight", "peak held", 0, higher=True),
]


def load_argv(profile: Profile, port: object) -> list[str]:
    return client_argv(
        "held",
        "--port",
        port,
        "--connections",
        profile.held_connections,
        "--delay",
        f"{profile.held_delay:g}",
        "--rounds",
        profile.held_rounds,
        "--ramp-rate",
        f"{profile.held_ramp_rate:g}",
    )


def describe(profile: Profile) -> str:
    return shell(load_argv(profile, "$PORT"))


def measure(target: Target, profile: Profile) -> dict[str, float]:
    pid = target.process.pid
    if not http_ready(target.port, "/delayed?delay=0"):
        raise WorkloadError("warm-up request to /delayed failed")
    idle = rss_bytes(pid)
    reset_peak_rss(pid)
    before = cpu_seconds(pid)
    budget = 60 + profile.held_connections / profile.held_ramp_rate + (profile.held_rounds * (profile.held_delay + 30))
    result = run_client(load_argv(profile, target.port), timeout=budget)
    spent = cpu_seconds(pid) - before
    peak = peak_rss_bytes(pid)
    completed = float(result["completed"])  # type: ignore[arg-type]
    held = float(result["peak_inflight"])  # type: ignore[arg-type]
    figures = {
        key: float(value)
        for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    figures["cpu_ms_per_req"] = spent * 1000 / completed if completed else float("nan")
    figures["rss_kb_per_held"] = (peak - idle) / 1024 / held if held else float("nan")
    figures["idle_rss_mb"] = idle / 1e6
    return figures
