"""``python -m bench``: measure, then write RESULTS.md, the chart and the raw JSON."""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import resource
import signal
import sys
from pathlib import Path
from types import FrameType

from bench import chart, report
from bench.lineup import LINEUPS, SERVERS
from bench.procs import stop_all
from bench.profiles import MIB, PROFILES
from bench.runner import ORDER, Results, Runner

HERE = Path(__file__).resolve().parent


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--workloads", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help="comma-separated subset of the servers (see bench/lineup.py)"
    )
    parser.add_argument("--reps", type=int, help="runs per server and workload")
    parser.add_argument("--held-connections", type=int, help="W2 connections")
    parser.add_argument("--held-delay", type=float, help="W2 delay in seconds")
    parser.add_argument("--transfer-mib", type=int, help="W3/W4 body size in MiB")
    parser.add_argument("--seconds", type=int, help="W1/W5 measured seconds")
    parser.add_argument("--budget-minutes", type=float, help="stop starting runs after this")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--chart", type=Path, default=HERE / "results.png")
    parser.add_argument("--no-chart", action="store_true", help="skip the matplotlib chart")
    parser.add_argument("--json", type=Path, default=HERE / "work" / "results.json")
    parser.add_argument(
        "--report-only", action="store_true", help="re-render RESULTS.md and the chart from --json, measure nothing"
    )
    return parser.parse_args()


def _profile(args: argparse.Namespace) -> object:
    changes: dict[str, object] = {}
    for option, field in [
        ("reps", "reps"),
        ("held_connections", "held_connections"),
        ("held_delay", "held_delay"),
        ("seconds", "hello_seconds"),
        ("seconds", "ws_seconds"),
    ]:
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    if args.transfer_mib is not None:
        changes["transfer_bytes"] = args.transfer_mib * MIB
    if args.budget_minutes is not None:
        changes["budget_seconds"] = args.budget_minutes * 60
    return dataclasses.replace(PROFILES[args.profile], **changes)  # type: ignore[arg-type]


def _stop(signum: int, frame: FrameType | None) -> None:
    stop_all()
    sys.exit(128 + signum)


def main() -> None:
    args = _arguments()
    if args.report_only:
        results = Results.load(args.json)
    else:
        workloads = args.workloads.split(",")
        servers = args.servers.split(",")
        unknown = [w for w in workloads if w not in LINEUPS] + [s for s in servers if s not in SERVERS]
        if unknown:
            raise SystemExit(f"unknown workload or server: {', '.join(unknown)}")
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # W2 holds 10,000 sockets
        atexit.register(stop_all)
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        profile = _profile(args)
        results = Runner(profile, workloads, servers, args.json.parent).run()  # type: ignore[arg-type]
        results.save(args.json)
    args.out.write_text(report.render(results))
    print(f"wrote {args.out}")
    if not args.no_chart:
        chart.draw(results, args.chart)
        print(f"wrote {args.chart}")


if __name__ == "__main__":
    main()
