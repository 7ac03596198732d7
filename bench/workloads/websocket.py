"""W5 WebSocket echo: connections each echoing one message at a time, three ways.

1. 64-byte text messages, no compression offered (``per_s``, and the server CPU per message);
2. the same with ``permessage-deflate`` offered (``per_s_deflate``; ``deflate_ratio`` is it over
   the first, in the same run on the same server process);
3. 1 MiB of compressible JSON with ``permessage-deflate`` offered, on ``JSON_CONNECTIONS``
   connections (``json_mb_s``: MB/s of application data echoed, one direction).

A server that declines compression gets no figure for 2 and 3 (NaN, and the run says so) rather
than an uncompressed one under a compressed label. Server CPU is read around each client run,
so it is divided by every message echoed, warm-up included.
"""

from __future__ import annotations

from bench.procs import cpu_seconds
from bench.profiles import Profile
from bench.workloads.common import Column, Target, client_argv, run_client, shell

TITLE = "W5 WebSocket echo: one message in flight per connection (64 B; 64 B compressed; 1 MiB JSON compressed)"
COLUMNS = [
    Column("per_s", "messages/s", 0, higher=True, ratio=True),
    Column("cpu_us_per_msg", "server CPU us/message", 1, higher=False),
    Column("per_s_deflate", "compressed messages/s", 0, higher=True, ratio=True),
    Column("deflate_ratio", "compressed / plain", 2, higher=True),
    Column("json_mb_s", "1 MiB JSON compressed, MB/s", 1, higher=True, ratio=True),
    Column("json_cpu_ms_per_msg", "server CPU ms/1 MiB message", 2, higher=False),
    Column("errors", "errors", 0, higher=False),
]
JSON_SIZE = 1024 * 1024
#: Few connections: each holds 1 MiB in flight both ways.
JSON_CONNECTIONS = 4
NAN = float("nan")


def load_argv(profile: Profile, port: object, *extra: object) -> list[str]:
    connections = JSON_CONNECTIONS if "--json" in extra else profile.ws_connections
    size = JSON_SIZE if "--json" in extra else profile.ws_message
    return client_argv(
        "wsecho",
        "--port",
        port,
        "--connections",
        connections,
        "--size",
        size,
        "--warmup",
        f"{profile.ws_warmup:g}",
        "--seconds",
        f"{profile.ws_seconds:g}",
        *extra,
    )


RUNS = [(), ("--deflate",), ("--json", "--deflate")]


def describe(profile: Profile) -> str:
    return "; ".join(shell(load_argv(profile, "$PORT", *extra)) for extra in RUNS)


def _run(target: Target, profile: Profile, *extra: str) -> tuple[dict[str, object], float]:
    before = cpu_seconds(target.process.pid)
    result = run_client(load_argv(profile, target.port, *extra), timeout=60)
    return result, cpu_seconds(target.process.pid) - before


def measure(target: Target, profile: Profile) -> dict[str, float]:
    plain, plain_cpu = _run(target, profile)
    small, _ = _run(target, profile, "--deflate")
    large, large_cpu = _run(target, profile, "--json", "--deflate")
    figures = {
        "per_s": float(plain["per_s"]),  # type: ignore[arg-type]
        "cpu_us_per_msg": _per(plain_cpu * 1e6, plain),
        "per_s_deflate": NAN,
        "deflate_ratio": NAN,
        "json_mb_s": NAN,
        "json_cpu_ms_per_msg": NAN,
        "errors": float(plain["errors"]) + float(small["errors"]) + float(large["errors"]),  # type: ignore[arg-type]
    }
    if str(small["negotiated"]).startswith("permessage-deflate"):
        figures["per_s_deflate"] = float(small["per_s"])  # type: ignore[arg-type]
        figures["deflate_ratio"] = figures["per_s_deflate"] / figures["per_s"] if figures["per_s"] else NAN
    if str(large["negotiated"]).startswith("permessage-deflate"):
        figures["json_mb_s"] = float(large["mb_per_s"])  # type: ignore[arg-type]
        figures["json_cpu_ms_per_msg"] = _per(large_cpu * 1e3, large)
    return figures


def _per(spent: float, result: dict[str, object]) -> float:
    total = float(result["all_messages"])  # type: ignore[arg-type]
    return spent / total if total else NAN
