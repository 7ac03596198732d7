# -*- test-case-name: tests.hardening.test_limits -*-
"""The limits and timeouts of ``hybrid serve`` (and ``twistd hybrid``): options, safe defaults, and where each goes.

``Limits`` holds one field per option; ``ServeOptions`` inherits them, so the command line, the
twistd plugin and both fronts read the same values. Adding one is an entry in ``_OPTIONS`` and a
field of the same name. The Twisted front applies every one (``site_arguments`` to the
``StreamingSite``, ``asgi_arguments`` to each ``ASGIResource``, ``lifespan_arguments`` to each
``LifespanService``, ``max_in_flight`` to each native subtree through ``app.in_flight``,
``drain_timeout`` to ``app.shutdown``); ``hypercorn_config`` maps those Hypercorn has an
equivalent for. The README's "Limits and timeouts" table lists them all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypercorn.config import Config

KiB = 1024
MiB = 1024 * KiB

#: The backlog asked for without a connection limit; the kernel lowers it to its own maximum.
UNLIMITED_BACKLOG = 65535

#: Endpoint types whose string takes ``backlog=``; others (``systemd:``) come listening already.
_BACKLOG_ENDPOINTS = ("tcp", "tcp6", "ssl", "unix")


def with_backlog(description: str, backlog: int) -> str:
    """``description`` with ``backlog=`` added, unless it has one or its type takes none."""
    kind = description.partition(":")[0].lower()
    if kind not in _BACKLOG_ENDPOINTS or "backlog=" in description:
        return description
    return f"{description}:backlog={backlog}"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The limits and timeouts, with the defaults ``hybrid serve`` uses; ``None`` means no limit."""

    max_body_size: int | None = 100 * MiB
    max_in_flight: int | None = 10_000
    response_timeout: float | None = 70.0
    header_timeout: float | None = 10.0
    idle_timeout: float = 60.0
    max_connections: int | None = 10_000
    max_header_count: int = 100
    max_header_bytes: int = 16 * KiB
    drain_timeout: float = 60.0
    disconnect_grace: float = 3.0
    startup_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    ws_max_message_size: int | None = 16 * MiB
    ws_ping_interval: float | None = 20.0
    ws_ping_timeout: float | None = 20.0
    ws_per_message_deflate: bool = True

    def backlog(self) -> int:
        """The listen backlog every listener gets unless its endpoint string sets one.

        As many as the connections the server accepts, so that a burst of clients up to that
        limit waits in the kernel's queue instead of having its SYNs dropped and retried a second
        later (Twisted's default is 50). Linux caps it at ``net.core.somaxconn`` (4096 by default).
        """
        return min(self.max_connections or UNLIMITED_BACKLOG, UNLIMITED_BACKLOG)

    def site_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``bridge.StreamingSite``."""
        return {
            "header_timeout": self.header_timeout,
            "idle_timeout": self.idle_timeout,
            "max_connections": self.max_connections,
            "max_header_count": self.max_header_count,
            "max_header_bytes": self.max_header_bytes,
        }

    def asgi_arguments(self) -> dict[str, Any]:
        """Keyword arguments for each ``bridge.ASGIResource`` (limits per mount)."""
        return {
            "max_body_size": self.max_body_size,
            "max_in_flight": self.max_in_flight,
            "response_timeout": self.response_timeout,
            "disconnect_grace": self.disconnect_grace,
            "ws_max_message_size": self.ws_max_message_size,
            "ws_ping_interval": self.ws_ping_interval,
            "ws_ping_timeout": self.ws_ping_timeout,
            "ws_per_message_deflate": self.ws_per_message_deflate,
        }

    def lifespan_arguments(self) -> dict[str, Any]:
        """Keyword arguments for each ``bridge.LifespanService``."""
        return {"startup_timeout": self.startup_timeout, "shutdown_timeout": self.shutdown_timeout}

    def hypercorn_config(self, config: Config) -> None:
        """Set Hypercorn's equivalents on ``config``; the others have none (see the README table).

        Hypercorn's ``keep_alive_timeout`` runs from the connection, or the end of the previous
        response, until a request's headers are complete, as ``--header-timeout`` does.
        ``read_timeout`` is no ``--idle-timeout``: it would also cut a client waiting quietly
        for a slow response, so it stays off.  Hypercorn always accepts ``permessage-deflate``:
        ``--no-ws-per-message-deflate`` has no equivalent there.
        """
        if self.header_timeout is not None:
            config.keep_alive_timeout = self.header_timeout
        config.h11_max_incomplete_size = self.max_header_bytes
        config.h2_max_header_list_size = self.max_header_bytes
        config.graceful_timeout = self.drain_timeout
        config.startup_timeout = self.startup_timeout
        config.shutdown_timeout = self.shutdown_timeout
        if self.ws_max_message_size is not None:
            config.websocket_max_message_size = self.ws_max_message_size
        config.websocket_ping_interval = self.ws_ping_interval


@dataclass(frozen=True)
class _Option:
    name: str
    parse: Callable[[str], Any]
    metavar: str
    help: str
    #: What ``none`` means for this option, if it accepts ``none``.
    none_means: str | None = None

    def parser(self) -> Callable[[str], Any]:
        if self.none_means is None:
            return self.parse

        def parse_or_none(text: str) -> Any:
            return None if text.lower() == "none" else self.parse(text)

        parse_or_none.__name__ = self.parse.__name__  # argparse names the type in its errors
        return parse_or_none


def size(text: str) -> int:
    """A byte count: ``1048576``, ``64K``, ``100M``, ``1G`` (binary multiples)."""
    units = {"K": KiB, "M": MiB, "G": 1024 * MiB}
    number, unit = (text[:-1], units[text[-1].upper()]) if text[-1:].upper() in units else (text, 1)
    if not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size in bytes (like 65536, 64K, 100M or 1G)")
    return int(number) * unit


def count(text: str) -> int:
    """A whole number, at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


_OPTIONS = (
    _Option("max_body_size", size, "BYTES", "request bodies larger than this get 413 (per ASGI mount)", "no limit"),
    _Option(
        "max_in_flight",
        count,
        "N",
        "requests beyond N running at once in one mount (ASGI app, native subtree or WSGI app) get 503 "
        "with Retry-After instead of queueing",
        "no limit",
    ),
    _Option(
        "response_timeout",
        seconds,
        "SECONDS",
        "an ASGI app that has not started its response by then is cancelled; the client gets 504",
        "wait for ever",
    ),
    _Option(
        "header_timeout",
        seconds,
        "SECONDS",
        "a client has this long to send a request's headers (408 and close), and a keep-alive "
        "connection may idle this long between requests",
        "no deadline",
    ),
    _Option(
        "idle_timeout",
        seconds,
        "SECONDS",
        "a connection that sends nothing for this long while a request body is expected is closed",
    ),
    _Option("max_connections", count, "N", "connections beyond N get 503 and are closed", "no limit"),
    _Option("max_header_count", count, "N", "requests with more header lines get 400"),
    _Option("max_header_bytes", size, "BYTES", "a request line plus headers larger than this gets 431"),
    _Option(
        "drain_timeout",
        seconds,
        "SECONDS",
        "on SIGTERM or SIGINT, in-flight requests get this long to finish before the lifespan "
        "shutdown and exit (a second signal exits at once)",
    ),
    _Option(
        "disconnect_grace",
        seconds,
        "SECONDS",
        "an ASGI app still running this long after its client left is cancelled",
    ),
    _Option(
        "startup_timeout",
        seconds,
        "SECONDS",
        "an ASGI app whose lifespan startup takes longer stops the server (exit status 1)",
    ),
    _Option(
        "shutdown_timeout",
        seconds,
        "SECONDS",
        "an ASGI app's lifespan shutdown is abandoned after this long",
    ),
    _Option(
        "ws_max_message_size",
        size,
        "BYTES",
        "a WebSocket message from a client larger than this closes the connection with 1009",
        "no limit",
    ),
    _Option("ws_ping_interval", seconds, "SECONDS", "seconds between keepalive pings on each WebSocket", "no pings"),
    _Option(
        "ws_ping_timeout",
        seconds,
        "SECONDS",
        "a WebSocket whose pong is this late is closed with 1011",
        "never",
    ),
)


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the limit and timeout options on ``parser``, each with its default in the help."""
    group = parser.add_argument_group("limits and timeouts")
    defaults = Limits()
    for option in _OPTIONS:
        default = getattr(defaults, option.name)
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        group.add_argument(
            "--" + option.name.replace("_", "-"),
            type=option.parser(),
            default=default,
            metavar=option.metavar,
            help=f"{option.help} (default {shown}{f'; none: {option.none_means}' if option.none_means else ''})",
        )
    group.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=defaults.ws_per_message_deflate,
        help="accept WebSocket compression (permessage-deflate, RFC 7692) when a client offers it (default on; "
        "the Hypercorn front always accepts it)",
    )
