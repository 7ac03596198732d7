"""``python -m bench.profile``: where one server spends its time under a workload, via py-spy.

Starts the server pinned to the server CPU, drives it with wrk (W1 hello) or the held-requests
client (W2), samples it with py-spy meanwhile, and prints the functions with the most samples,
by own time and by time including callees, as Markdown tables (what bench/PROFILE.md quotes).
py-spy stops the process at each sample (its default, accurate mode), so the server runs slower
while profiled: the proportions matter here, not the throughput.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.lineup import SERVERS
from bench.procs import CLIENT_CPU, SERVER_CPU, Launched, free_port, pinned, stop_all, wait_ready
from bench.profiles import FULL
from bench.workloads import held, hello

WORK = Path(__file__).resolve().parent / "work"
_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (file.py)``: samples add up per function."""
    name, _, where = _LINE.sub(")", frame).partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})"


def summarise(raw: str) -> tuple[int, Counter[str], Counter[str]]:
    """Sample count, own samples and inclusive samples per function from py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for function in set(frames):
            inclusive[function] += count
    return total, own, inclusive


def _table(title: str, counts: Counter[str], total: int, top: int) -> str:
    rows = [f"| {count * 100 / total:.1f}% | `{name}` |" for name, count in counts.most_common(top)]
    return "\n".join([f"**{title}** ({total} samples)", "", "| share | function |", "|---|---|", *rows, ""])


def _load(workload: str, port: int, seconds: int) -> list[str]:
    if workload == "W1":
        return hello.load_argv(FULL, port, seconds)
    profile = dataclasses.replace(FULL, held_connections=2000, held_delay=1.0, held_rounds=max(1, seconds - 2))
    return held.load_argv(profile, port)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("server", choices=sorted(SERVERS))
    parser.add_argument("--workload", choices=("W1", "W2"), default="W1")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    WORK.mkdir(parents=True, exist_ok=True)
    raw = WORK / f"profile-{args.server}-{args.workload}.txt"
    server = Launched(
        pinned(SERVER_CPU, SERVERS[args.server].argv(port)),
        WORK / "logs" / f"profile-{args.server}.log",
        cwd=Path.cwd(),
    )
    try:
        wait_ready(server, port, time.monotonic() + 30)
        load = Launched(
            _load(args.workload, port, args.seconds + 2), WORK / "logs" / "profile-load.log", cwd=Path.cwd()
        )
        time.sleep(1)  # past the load's ramp-up
        subprocess.run(
            pinned(
                CLIENT_CPU,
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(server.pid),
                    "-d",
                    str(args.seconds),
                    "-r",
                    str(args.rate),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                ],
            ),
            check=True,
            capture_output=True,
            timeout=args.seconds + 60,
        )
        load.stop()
    finally:
        stop_all()
    total, own, inclusive = summarise(raw.read_text())
    print(f"`python -m bench.profile {args.server} --workload {args.workload}`\n")
    print(_table("Own time", own, total, args.top))
    # Frames on nearly every stack (the interpreter, the loop's run_forever) say nothing.
    busy = Counter({name: n for name, n in inclusive.items() if n < 0.95 * total})
    print(_table("Including callees (frames on >= 95% of stacks left out)", busy, total, args.top))


if __name__ == "__main__":
    main()
