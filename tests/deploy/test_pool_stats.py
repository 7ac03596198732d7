"""How ``/stats`` of a worker pool merges the workers' own counters (``app.worker``)."""

from __future__ import annotations

import subprocess

from app.worker import merge_snapshots
from tests.conftest import hybrid_argv


def _side(in_flight: int, peak: int, completed: int, mean: float | None, p99: float | None) -> dict[str, object]:
    latency = {"count": completed, "mean": mean, "p50": p99, "p90": p99, "p99": p99, "max": p99}
    return {"in_flight": in_flight, "peak_in_flight": peak, "completed": completed, "abandoned": 1, "latency": latency}


def test_counts_add_up_latency_takes_the_largest_and_mean_is_weighted() -> None:
    one = {"twisted": _side(1, 5, 10, 0.5, 0.9), "process": {"pid": 11, "rss_bytes": 100}}
    two = {"twisted": _side(2, 3, 30, 0.1, 0.2), "process": {"pid": 22, "rss_bytes": 50}}
    merged = merge_snapshots({"1": one, "2": two})
    twisted = merged["twisted"]
    assert (twisted["in_flight"], twisted["peak_in_flight"], twisted["completed"], twisted["abandoned"]) == (
        3,
        8,
        40,
        2,
    )
    assert twisted["latency"]["count"] == 40
    assert twisted["latency"]["p99"] == 0.9 and twisted["latency"]["max"] == 0.9
    assert abs(twisted["latency"]["mean"] - (0.5 * 10 + 0.1 * 30) / 40) < 1e-12
    assert merged["process"] == {"pid": [11, 22], "rss_bytes": 150}
    assert merged["workers"] == {"1": one, "2": two}


def test_a_worker_that_did_not_answer_is_listed_and_left_out() -> None:
    one = {"asgi": _side(0, 1, 4, None, None)}
    merged = merge_snapshots({"1": one, "2": None})
    assert merged["workers"] == {"1": one, "2": None}
    assert merged["asgi"]["completed"] == 4
    assert merged["asgi"]["latency"]["p99"] is None and merged["asgi"]["latency"]["mean"] is None


def test_trusted_proxy_must_be_an_address_or_network() -> None:
    result = subprocess.run(
        hybrid_argv("--trusted-proxy", "nginx.local"), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "'nginx.local' is not an IP address, a network (10.0.0.0/8) or *" in result.stderr
