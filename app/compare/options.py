"""The options of ``hybrid compare`` and their validation.

Malformed values are refused by argparse (usage, then one error line, exit 2); combinations
that are each valid but make no sense together are refused by ``CompareOptions.check``.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from app.compare.targets import KNOWN_SIDES, Target, parse_base_url, parse_sides, resolve
from app.tutorial import DelayError, parse_delay

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_HYPERCORN_URL = "http://127.0.0.1:8081"
PLOT_FORMATS = (".png", ".svg")

T = TypeVar("T")


class OptionsError(ValueError):
    """Options that cannot be run together; the message says why."""


@dataclass(frozen=True)
class CompareOptions:
    targets: list[Target]
    requests: int
    concurrency: int
    delay: float
    endpoint: str
    abandon: float
    json: Path | None
    plot: Path | None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> CompareOptions:
        options = cls(
            targets=resolve(args.sides, args.url, args.hypercorn_url),
            requests=args.requests,
            concurrency=min(args.concurrency, args.requests),
            delay=args.delay,
            endpoint=args.endpoint,
            abandon=args.abandon,
            json=args.json,
            plot=args.plot,
        )
        options.check()
        return options

    def check(self) -> None:
        if self.abandon and not self.delay:
            raise OptionsError("--abandon needs a --delay above 0: there is nothing to abandon")
        if self.plot is not None and importlib.util.find_spec("matplotlib") is None:
            raise OptionsError(
                "--plot needs matplotlib, which a plain install leaves out: pip install 'hybrid-twisted-asgi[plot]'"
            )
        for flag, path in (("--json", self.json), ("--plot", self.plot)):
            if path is not None and not path.resolve().parent.is_dir():
                raise OptionsError(f"{flag} {path}: {path.parent} is not a directory")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``compare`` options on ``parser``."""
    parser.add_argument(
        "--url",
        type=_argument(parse_base_url),
        default=DEFAULT_URL,
        help=f"the hybrid site (default {DEFAULT_URL}, as `hybrid serve` serves it)",
    )
    parser.add_argument(
        "--hypercorn-url",
        type=_argument(parse_base_url),
        default=DEFAULT_HYPERCORN_URL,
        help="the site under Hypercorn, for the hypercorn side "
        f"(default {DEFAULT_HYPERCORN_URL}: `hybrid serve --server hypercorn --listen tcp:8081:interface=127.0.0.1`)",
    )
    parser.add_argument("--requests", type=_count, default=50, metavar="N", help="requests per side (default 50)")
    parser.add_argument(
        "--concurrency",
        type=_count,
        default=50,
        metavar="C",
        help="requests in flight at once per side (default 50, at most N)",
    )
    parser.add_argument(
        "--delay", type=_delay, default=1.0, metavar="SECONDS", help="the ?delay= of each request (default 1)"
    )
    parser.add_argument(
        "--sides",
        type=_argument(parse_sides),
        default=["twisted", "asgi"],
        metavar="A,B,...",
        help=f"the sides to compare, in this order (default twisted,asgi; known: {','.join(KNOWN_SIDES)})",
    )
    parser.add_argument(
        "--endpoint",
        choices=("delayed", "stream"),
        default="delayed",
        help="what each side is asked for, /<side>/ENDPOINT: delayed answers once after the delay, "
        "stream sends a chunk at once and then one per fifth of the delay (default delayed)",
    )
    parser.add_argument(
        "--abandon",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="abort this fraction of the requests halfway through their delay, on purpose (default 0)",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure and request timestamp here")
    parser.add_argument("--plot", type=_plot_path, metavar="FILE", help="draw the request timeline (.png or .svg)")


def _argument(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type`` from a parser raising ``ValueError``, keeping its message."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _delay(text: str) -> float:
    try:
        return parse_delay([text], 0.0)
    except DelayError as e:
        raise argparse.ArgumentTypeError(str(e).strip()) from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1")
    return value


def _plot_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r}: the plot is drawn as .png or .svg")
    return path
