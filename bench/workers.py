"""Throughput of ``hybrid serve --workers 1`` and ``--workers 2``, and the ratio.

Standalone (``make bench`` can call it)::

    .venv/bin/python bench/workers.py [--seconds 10] [--rounds 3] [--connections 64] [--json FILE]

For each endpoint (the tutorial's native resource and its Starlette twin through the bridge,
both with ``?delay=0``), wrk loads the server with keep-alive connections; the worker counts
are interleaved (1 2 1 2 ...) so machine noise hits both alike, and the medians are reported.
wrk shares the machine's cores with the workers: on a 2-core machine the ratio measures what
a second worker buys when the load generator takes part of a core, not a clean 2x ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = {"twisted": "/twisted/delayed?delay=0", "asgi": "/asgi/delayed?delay=0"}
WORKER_COUNTS = (1, 2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_workers(url: str, workers: int, deadline: float) -> None:
    """Until ``/stats`` lists every worker as answering (each merges the others' counters)."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/stats", timeout=5) as response:
                listed = json.load(response)["workers"]
            if sum(v is not None for v in listed.values()) == workers:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: {workers} workers did not start")


def _start(workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [sys.executable, "-m", "app", "serve", "--workers", str(workers)]
    argv += ["--listen", f"tcp:{port}:interface=127.0.0.1"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    _wait_for_workers(url, workers, time.monotonic() + 30)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def _wrk(url: str, seconds: float, connections: int) -> float:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{errors.group(1)} error responses from {url}")
    found = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{out}")
    return float(found.group(1))


def measure(seconds: float, rounds: int, connections: int) -> dict[str, dict[int, list[float]]]:
    """req/s per endpoint and worker count, one figure per round."""
    results: dict[str, dict[int, list[float]]] = {name: {n: [] for n in WORKER_COUNTS} for name in ENDPOINTS}
    for _ in range(rounds):
        for workers in WORKER_COUNTS:
            proc, url = _start(workers)
            try:
                for name, path in ENDPOINTS.items():
                    _wrk(url + path, min(2.0, seconds), connections)  # warm-up: imports, caches
                    results[name][workers].append(_wrk(url + path, seconds, connections))
            finally:
                _stop(proc)
    return results


def _load() -> str:
    """The 1-minute load average: other work on the machine shows in the figures."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = measure(args.seconds, args.rounds, args.connections)
    load = f"wrk -t1 -c{args.connections} -d{args.seconds:g}s"
    print(f"{load}, median of {args.rounds} interleaved rounds, {os.cpu_count()} cores, load average {_load()}")
    print("| endpoint | 1 worker req/s | 2 workers req/s | ratio |")
    print("|---|---:|---:|---:|")
    summary = {}
    for name, by_count in results.items():
        one, two = (statistics.median(by_count[n]) for n in WORKER_COUNTS)
        summary[name] = {"1": one, "2": two, "ratio": two / one, "runs": by_count}
        print(f"| {ENDPOINTS[name]} | {one:.0f} | {two:.0f} | {two / one:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
