"""W5 WebSocket echo: connections each echoing small text messages one at a time.

Server CPU is read around the whole client run, so it is divided by every message echoed,
warm-up included (the handshakes are a rounding error next to them).
"""

from __future__ import annotations

from bench.procs import cpu_seconds
from bench.profiles import Profile
from bench.workloads.common import Column, Target, client_argv, run_client, shell

TITLE = "W5 WebSocket echo: one message in flight per connection"
COLUMNS = [
    Column("per_s", "messages/s", 0, higher=True, ratio=True),
    Column("cpu_us_per_msg", "server CPU us/message", 1, higher=False),
    Column("errors", "errors", 0, higher=False),
]


def load_argv(profile: Profile, port: object) -> list[str]:
    return client_argv(
        "wsecho",
        "--port",
        port,
        "--connections",
        profile.ws_connections,
        "--size",
        profile.ws_message,
        "--warmup",
        f"{profile.ws_warmup:g}",
        "--seconds",
        f"{profile.ws_seconds:g}",
    )


def describe(profile: Profile) -> str:
    return shell(load_argv(profile, "$PORT"))


def measure(target: Target, profile: Profile) -> dict[str, float]:
    before = cpu_seconds(target.process.pid)
    result = run_client(load_argv(profile, target.port), timeout=60)
    spent = cpu_seconds(target.process.pid) - before
    total = float(result["all_messages"])  # type: ignore[arg-type]
    return {
        "per_s": float(result["per_s"]),  # type: ignore[arg-type]
        "cpu_us_per_msg": spent * 1e6 / total if total else float("nan"),
        "errors": float(result["errors"]),  # type: ignore[arg-type]
    }
