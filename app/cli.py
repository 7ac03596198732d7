"""The ``hybrid`` command line.

Each subcommand is a ``Command``: a name, a help line, a function declaring its options and a
function running it. Adding one is one more entry in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.compare.options import add_compare_arguments
from app.options import ServeOptions, add_serve_arguments


@dataclass(frozen=True)
class Command:
    """One ``hybrid`` subcommand."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _serve(args: argparse.Namespace) -> int:
    # The reactor must be installed before anything imports twisted.internet.reactor,
    # including the modules named by --mount.
    from bridge import install_reactor
    from bridge._choices import NotInstalled

    try:
        install_reactor(loop=args.loop)
    except NotInstalled as e:
        print(f"hybrid serve: error: --loop {args.loop}: {e}", file=sys.stderr)
        return 2
    options = ServeOptions.from_namespace(args)
    if args.workers is not None:
        from app.workers import supervise

        return supervise(options, args.workers, args.argv)
    if args.server == "hypercorn":
        from app.hypercorn_front import run as run_under_hypercorn

        return run_under_hypercorn(options)
    from app.serve import run

    return run(options)


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    add_serve_arguments(parser)
    parser.add_argument(
        "--server",
        choices=("twisted", "hypercorn"),
        default="twisted",
        help="the front: Twisted's Site (default), or Hypercorn with the native resources "
        "served through bridge.TwistedResourceApp",
    )
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="run N worker processes sharing the listening sockets, under a supervisor that "
        "restarts them and forwards SIGTERM (default: serve in this one process)",
    )


def _compare(args: argparse.Namespace) -> int:
    from app.compare.command import run

    return run(args)


def _add_install_plugin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        help="the twisted/plugins directory to write to (default: the one of the Twisted this Python imports)",
    )


def _install_plugin(args: argparse.Namespace) -> int:
    from app.twistd_plugin import install_dropin

    print(f"installed {install_dropin(args.dir)}")
    return 0


COMMANDS = (
    Command(
        "serve",
        "serve the hybrid site (or any ASGI app or Twisted resource) on Twisted's asyncio reactor",
        _add_serve_arguments,
        _serve,
    ),
    Command(
        "compare",
        "fire the same workload at each side and compare them side by side (table, timeline, JSON)",
        add_compare_arguments,
        _compare,
    ),
    Command(
        "install-plugin",
        "make `twistd hybrid` available (write a small plugin module into twisted/plugins)",
        _add_install_plugin_arguments,
        _install_plugin,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hybrid", description="Twisted and asyncio on one event loop.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _version() -> str:
    """The installed distribution's version (a checkout run with ``python -m app`` has none)."""
    try:
        return importlib.metadata.version("hybrid-twisted-asgi")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed, for --workers
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
