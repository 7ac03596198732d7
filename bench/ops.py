"""``hybrid serve`` as it runs in production: what the access log and metrics cost, held requests with the defaults.

Standalone (``make bench`` runs it after the main harness and writes ``bench/OPS.md``)::

    .venv/bin/python -m bench.ops [--seconds 8] [--rounds 3] [--held-connections 5000] [--markdown FILE]

Access log and metrics: wrk (pinned to the client CPU, the server to the other) loads ``hybrid
serve`` on the native and the bridged tutorial endpoint with ``?delay=0``: with neither access log
nor metrics, with the metrics only (the default but for the access log), and with both, the log in
the combined format and in JSON (to a file). The settings are interleaved round by round and the
medians compared, as server CPU time per request and as requests per second.

Held requests: ``hybrid serve`` with its default limits and backlog (only ``--listen`` given)
and the W2 client (``bench/clients/held.py``) at ``--held-connections`` connections, each
holding a 1-s request twice, on each side; the run counts what was refused or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.procs import CLIENT_CPU, SERVER_CPU, cpu_seconds, free_port, pinned

REPO = Path(__file__).resolve().parents[1]
ENDPOINTS = {"twisted": "/twisted/delayed?delay=0", "asgi": "/asgi/delayed?delay=0"}
#: Each with the metrics on (the default) but the first, which is the bare ``hybrid serve``.
SETTINGS = {
    "none": ["--no-access-log", "--no-metrics"],
    "metrics": ["--no-access-log"],
    "metrics + combined": ["--access-log", "{log}"],
    "metrics + json": ["--access-log", "{log}", "--access-log-format", "json"],
}
BASELINE = "none"


def _start(args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = pinned(SERVER_CPU, [sys.executable, "-m", "app", "serve", "--listen", f"tcp:{port}:interface=127.0.0.1"])
    proc = subprocess.Popen([*argv, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"hybrid serve {' '.join(args)} did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wrk(url: str, seconds: float, connections: int) -> tuple[float, int]:
    """Requests per second and the number of requests wrk completed."""
    argv = pinned(CLIENT_CPU, ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", url])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"error responses from {url}:\n{out}")
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return float(rate.group(1)), int(total.group(1))


def access_log_cost(seconds: float, rounds: int, connections: int) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Per endpoint and setting: req/s and server CPU ms per request, one figure per round."""
    figures: dict[str, dict[str, dict[str, list[float]]]] = {
        name: {setting: {"rps": [], "cpu_ms": []} for setting in SETTINGS} for name in ENDPOINTS
    }
    with tempfile.TemporaryDirectory() as work:
        for _ in range(rounds):
            for setting, template in SETTINGS.items():
                log = Path(work) / f"{setting}.log"
                proc, url = _start([arg.format(log=log) for arg in template])
                try:
                    for name, path in ENDPOINTS.items():
                        _wrk(url + path, min(2.0, seconds), connections)  # warm-up: imports, caches
                        before = cpu_seconds(proc.pid)
                        rps, total = _wrk(url + path, seconds, connections)
                        spent = cpu_seconds(proc.pid) - before
                        figures[name][setting]["rps"].append(rps)
                        figures[name][setting]["cpu_ms"].append(spent * 1000 / total)
                finally:
                    _stop(proc)
                log.unlink(missing_ok=True)
    return figures


def held_with_defaults(connections: int, delay: float, rounds: int) -> dict[str, dict[str, object]]:
    """The W2 client against ``hybrid serve`` with default options, per side."""
    results: dict[str, dict[str, object]] = {}
    for side in ENDPOINTS:
        proc, url = _start(["--no-access-log"])
        port = url.rsplit(":", 1)[1]
        try:
            argv = pinned(CLIENT_CPU, [sys.executable, "-m", "bench.clients.held", "--port", port])
            argv += ["--connections", str(connections), "--delay", f"{delay:g}", "--rounds", str(rounds)]
            argv += ["--path-prefix", f"/{side}"]
            before = cpu_seconds(proc.pid)
            out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True, timeout=600).stdout
            result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
            result["cpu_seconds"] = cpu_seconds(proc.pid) - before
            with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
                result["server"] = json.load(response)[side]
            results[side] = result
        finally:
            _stop(proc)
    return results


def _markdown(args: argparse.Namespace, cost: dict[str, dict[str, dict[str, list[float]]]], held: object) -> str:
    lines = [
        "# `hybrid serve` in production: the cost of the access log and metrics, held requests with the defaults",
        "",
        f"`python -m bench.ops --seconds {args.seconds:g} --rounds {args.rounds} --connections {args.connections} "
        f"--held-connections {args.held_connections}`, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f} at the end (server and client pinned to one core each).",
        "",
        f"## Access log and metrics (wrk -c{args.connections}, median of {args.rounds} interleaved rounds)",
        "",
        f"| endpoint | observing | req/s | server CPU ms/req | CPU ratio to {BASELINE} | req/s ratio to {BASELINE} |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, by_setting in cost.items():
        off_cpu = statistics.median(by_setting[BASELINE]["cpu_ms"])
        off_rps = statistics.median(by_setting[BASELINE]["rps"])
        for setting, figures in by_setting.items():
            cpu, rps = statistics.median(figures["cpu_ms"]), statistics.median(figures["rps"])
            lines.append(
                f"| {ENDPOINTS[name]} | {setting} | {rps:.0f} | {cpu:.3f} | {cpu / off_cpu:.2f} | {rps / off_rps:.2f} |"
            )
    lines += [
        "",
        f"## Held requests with the default options ({args.held_connections} connections, each holding a "
        f"{args.held_delay:g}-s request {args.held_rounds} times)",
        "",
        "| side | completed / expected | errors | time-outs | p99 - delay ms | server CPU s | peak held | "
        "error samples |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    assert isinstance(held, dict)
    for side, result in held.items():
        p99 = result["p99_over_delay_ms"]
        lines.append(
            f"| {side} | {result['completed']} / {result['expected']} | {result['errors']} | {result['timeouts']} | "
            f"{p99:.0f} | {result['cpu_seconds']:.1f} | {result['peak_inflight']} | "
            f"{'; '.join(result['error_samples'][:2]) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--held-connections", type=int, default=5000)
    parser.add_argument("--held-delay", type=float, default=1.0)
    parser.add_argument("--held-rounds", type=int, default=2)
    parser.add_argument("--skip", choices=("access-log", "held"), help="measure only the other part")
    parser.add_argument("--markdown", type=Path, help="write the tables here (else standard output)")
    args = parser.parse_args()
    cost = {} if args.skip == "access-log" else access_log_cost(args.seconds, args.rounds, args.connections)
    held = {} if args.skip == "held" else held_with_defaults(args.held_connections, args.held_delay, args.held_rounds)
    text = _markdown(args, cost, held)
    if args.markdown:
        args.markdown.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
