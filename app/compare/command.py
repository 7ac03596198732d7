"""``hybrid compare``: check the sides, run the workload with a progress bar per side, report.

Anything the person running it must fix (bad options, a server that is not running, a side it
does not serve, a file that cannot be written) ends the command with one line on stderr and a
non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.compare import table
from app.compare.options import CompareOptions, OptionsError
from app.compare.probe import CompareError, check_targets
from app.compare.results import RequestRecord, SideResult
from app.compare.runner import Runner, Workload
from app.compare.targets import Target

PROG = "hybrid compare"
WIDE = 160


def run(args: argparse.Namespace) -> int:
    """The subcommand; returns the exit status."""
    try:
        options = CompareOptions.from_namespace(args)
        results = asyncio.run(_measure(options))
        _report(options, results)
    except OptionsError as e:
        return _fail(str(e), 2)
    except CompareError as e:
        return _fail(str(e), 1)
    except OSError as e:
        return _fail(f"{e.filename}: {e.strerror}" if e.filename else str(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return 0


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def title(options: CompareOptions) -> str:
    """One line saying what was measured, naming the paths each side was asked for."""
    paths = ", ".join(_path(target, options.endpoint) for target in options.targets)
    text = f"{options.requests} requests per side, {options.concurrency} at a time, "
    text += f"GET {paths} ?delay={options.delay:g}"
    if options.abandon:
        text += f", {options.abandon:.0%} abandoned halfway"
    return text


def _path(target: Target, endpoint: str) -> str:
    """``/twisted/delayed``; a side whose name is not its prefix (hypercorn serves ``/asgi``) says so."""
    path = f"{target.prefix}/{endpoint}"
    return path if target.prefix == f"/{target.name}" else f"{path} on {target.name}"


async def _measure(options: CompareOptions) -> list[SideResult]:
    async with httpx.AsyncClient(timeout=10) as client:
        await check_targets(client, options.targets, options.endpoint)
    workload = Workload(options.requests, options.concurrency, options.delay, options.endpoint, options.abandon)
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks = {t.name: progress.add_task(t.name, total=options.requests) for t in options.targets}

        def advance(target: Target, record: RequestRecord) -> None:
            progress.advance(tasks[target.name])

        return await Runner(workload, options.targets, advance).run()


def _report(options: CompareOptions, results: list[SideResult]) -> None:
    console = Console()
    if not console.is_terminal:
        console.width = WIDE  # a log or a pipe: no line to fit, so no wrapping inside the table
    console.print(title(options), highlight=False)
    console.print(table.render(results))
    if options.json:
        options.json.write_text(json.dumps(_document(options, results), indent=1) + "\n")
        console.print(f"wrote every figure and request to {options.json}", highlight=False)
    if options.plot:
        from app.compare import plot  # matplotlib: the `plot` extra, checked by CompareOptions.check

        plot.draw(results, options.plot, title(options), options.delay)
        console.print(f"drew the timeline to {options.plot}", highlight=False)


def _document(options: CompareOptions, results: list[SideResult]) -> dict[str, Any]:
    return {
        "tool": PROG,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "sides": [t.name for t in options.targets],
            "requests": options.requests,
            "concurrency": options.concurrency,
            "delay": options.delay,
            "endpoint": options.endpoint,
            "abandon": options.abandon,
        },
        "time_unit": "seconds since the run started",
        "sides": [r.to_json() for r in results],
    }
