"""W1 hello: keep-alive GETs of a 12-byte body with wrk; throughput, latency, server CPU.

wrk runs once to warm the server up (imports, caches, JIT-less but still lazy paths), then again
for the measured run; the server's CPU time is read from /proc around the measured run only.
"""

from __future__ import annotations

import re
import subprocess

from bench.procs import CLIENT_CPU, cpu_seconds, pinned
from bench.profiles import Profile
from bench.workloads.common import Column, Target, WorkloadError, shell

TITLE = "W1 hello: GET of a 12-byte body, keep-alive"
COLUMNS = [
    Column("rps", "req/s", 0, higher=True, ratio=True),
    Column("p50_ms", "p50 ms", 2, higher=False),
    Column("p99_ms", "p99 ms", 2, higher=False),
    Column("cpu_ms_per_req", "server CPU ms/req", 4, higher=False),
    Column("per_core_s", "req per server CPU-second", 0, higher=True, ratio=True),
    Column("errors", "errors", 0, higher=False),
]
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def load_argv(profile: Profile, port: object, seconds: float) -> list[str]:
    return pinned(
        CLIENT_CPU,
        [
            "wrk",
            "-t1",
            f"-c{profile.hello_connections}",
            f"-d{seconds:g}s",
            "--latency",
            f"http://127.0.0.1:{port}/hello",
        ],
    )


def describe(profile: Profile) -> str:
    return shell(load_argv(profile, "$PORT", profile.hello_seconds)) + (
        f"  (after a {profile.hello_warmup:g} s warm-up run of the same command)"
    )


def _wrk(argv: list[str], seconds: float) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired as exc:
        raise WorkloadError("wrk did not finish") from exc
    if done.returncode:
        raise WorkloadError(f"wrk failed: {done.stderr.strip()[:200]}")
    return done.stdout


def _latency_ms(output: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if not found:
        raise WorkloadError(f"no {percentile}% latency in wrk output")
    return float(found[1]) * _UNITS[found[2]]


def parse(output: str) -> dict[str, float]:
    """The figures of one wrk run (``--latency`` output)."""
    requests = re.search(r"^\s+(\d+) requests in", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not requests or not rate:
        raise WorkloadError(f"unexpected wrk output: {output[:200]!r}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": float(requests[1]),
        "rps": float(rate[1]),
        "p50_ms": _latency_ms(output, "50"),
        "p99_ms": _latency_ms(output, "99"),
        "errors": float(errors + (int(non2xx[1]) if non2xx else 0)),
    }


def measure(target: Target, profile: Profile) -> dict[str, float]:
    _wrk(load_argv(profile, target.port, profile.hello_warmup), profile.hello_warmup)
    before = cpu_seconds(target.process.pid)
    figures = parse(_wrk(load_argv(profile, target.port, profile.hello_seconds), profile.hello_seconds))
    spent = cpu_seconds(target.process.pid) - before
    figures["cpu_ms_per_req"] = spent * 1000 / figures["requests"] if figures["requests"] else 0.0
    # What the server could serve with a core to itself: steadier than req/s when other work
    # shares the machine, since stolen time does not count against it.
    figures["per_core_s"] = figures["requests"] / spent if spent else 0.0
    return figures
