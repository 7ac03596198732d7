"""The options of ``hybrid serve``, shared by the command line and the twistd plugin.

Adding an option is two edits here: an ``add_argument`` call in ``add_serve_arguments`` and a
field of the same name in ``ServeOptions``. The limits and timeouts are declared in ``app.limits``
(``ServeOptions`` inherits their fields from ``Limits``), the logging options in ``app.logs``
(``LogOptions``), the metrics option in ``app.metrics_web`` (``MetricsOptions``).
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, fields

from app.limits import Limits, add_limit_arguments
from app.logs import LogOptions, add_log_arguments
from app.metrics_web import MetricsOptions, add_metrics_arguments
from app.mounts import MountSpec
from app.tutorial import DEFAULT_DELAY, DelayError, parse_delay
from bridge._choices import HTTP_CHOICES, LOOP_CHOICES

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"


@dataclass(frozen=True)
class ServeOptions(Limits, LogOptions, MetricsOptions):
    """What to serve and where, within which limits."""

    listen: list[str]
    delay: float
    mount: list[MountSpec]
    wsgi_threads: int | None = None
    trusted_proxy: Sequence[str] = ()
    http: str = "auto"
    loop: str = "auto"

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace) -> ServeOptions:
        values = {f.name: getattr(namespace, f.name) for f in fields(cls)}
        values["listen"] = values["listen"] or [DEFAULT_LISTEN]
        return cls(**values)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``serve`` options on ``parser``."""
    add_limit_arguments(parser)
    add_log_arguments(parser)
    add_metrics_arguments(parser)
    parser.add_argument(
        "--listen",
        action="append",
        metavar="ENDPOINT",
        help=(
            "a Twisted server endpoint string to listen on; repeatable "
            f"(default {DEFAULT_LISTEN}; also e.g. ssl:8443:privateKey=key.pem:certKey=cert.pem, "
            "unix:/run/hybrid.sock; port 0 picks a free port, logged at startup)"
        ),
    )
    parser.add_argument(
        "--delay",
        type=_delay,
        default=DEFAULT_DELAY,
        metavar="SECONDS",
        help=f"default delay of the tutorial endpoints (default {DEFAULT_DELAY:g}; a request's ?delay= overrides it)",
    )
    parser.add_argument(
        "--mount",
        action="append",
        type=_mount,
        default=[],
        metavar="PREFIX=MODULE:ATTR",
        help="serve an ASGI 3 app, a WSGI app or a Twisted IResource at PREFIX; repeatable; "
        "PREFIX / replaces the whole site (like `daphne module:app`)",
    )
    parser.add_argument(
        "--wsgi-threads",
        type=_threads,
        metavar="N",
        help="size of the reactor's thread pool, which runs the WSGI side and mounted WSGI apps: at most N "
        "WSGI requests run at once, the others wait for a thread (default: Twisted's, 10)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        type=_network,
        default=[],
        metavar="ADDRESS",
        help="believe X-Forwarded-For/-Proto/-Host and Forwarded from this peer address or network "
        "(e.g. 127.0.0.1, 10.0.0.0/8, or * for any); repeatable; they then set the ASGI scope's "
        "client, scheme and server (default: trust no one)",
    )


    add_fast_lane_arguments(parser)


def add_fast_lane_arguments(parser: argparse.ArgumentParser) -> None:
    """``--http`` and ``--loop``, with Uvicorn's names and meanings (see ``bridge._choices``)."""
    parser.add_argument(
        "--http",
        choices=HTTP_CHOICES,
        default="auto",
        help="the HTTP/1.1 parser of the Twisted front: httptools (llhttp, in C) or twisted (Twisted's own, "
        "in Python); auto takes httptools when installed (pip install 'hybrid-twisted-asgi[fast]'); "
        "HTTP/2 is Twisted's either way (default auto)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOP_CHOICES,
        default="auto",
        help="the asyncio event loop under Twisted's reactor: uvloop or asyncio (the standard library's); "
        "auto takes uvloop when installed (pip install 'hybrid-twisted-asgi[fast]') (default auto)",
    )


def _network(text: str) -> str:
    try:
        if text != "*":
            ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address, a network (10.0.0.0/8) or *") from None
    return text


def _delay(text: str) -> float:
    try:
        return parse_delay([text], DEFAULT_DELAY)
    except DelayError as e:
        raise argparse.ArgumentTypeError(str(e).strip()) from None


def _threads(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of threads (a whole number, at least 1)")
    return int(text)


def _mount(text: str) -> MountSpec:
    try:
        return MountSpec.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
