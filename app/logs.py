# -*- test-case-name: tests.app.test_logging -*-
"""The logging options of ``hybrid serve`` and ``twistd hybrid``, and the access log of the Twisted front.

``--log-level`` filters the server's own log (startup, warnings, errors); ``--access-log``,
``--no-access-log`` and ``--access-log-format`` choose where the one line per request goes and in
which format (``app.access_log``). The server log keeps Twisted's text format on standard
output; access lines are plain lines without its ``[namespace#level]`` prefix, written in blocks
(``app.log_writer``).

On the Twisted front the access log is a concern of the ``Site``, as in Twisted: ``ObservedSite``
overrides ``Site.log(request)``, which Twisted calls when a response finishes (and the bridge
calls for a WebSocket handshake), and wraps the site's ``requestFactory`` to note when each
request arrived and to hear of a client that leaves before ``finish()`` (which Twisted does not
log): a request abandoned mid-way, or a WSGI response read to its end before ``WSGIResource``
finished it a reactor turn later. Each request is observed once. Whatever else wants a record of
each request (``app.metrics``) is one more ``RequestObserver``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from twisted.application.service import IServiceCollection
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    textFileLogObserver,
)
from twisted.web.http import Request
from twisted.web.resource import IResource

from app.access_log import FORMATS, AccessRecord, SideOf, from_twisted
from app.log_writer import BufferedLines
from app.worker import WorkerIdentity
from bridge import StreamingSite

LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

#: Called with the record of every request the site logs.
RequestObserver = Callable[[AccessRecord], None]


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """Where the logs go; ``access_log`` is a path, ``-`` for standard output, or ``None`` for none."""

    access_log: str | None = "-"
    access_log_format: str = "combined"
    log_level: str = "info"


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the logging options on ``parser``."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--access-log",
        metavar="PATH",
        default="-",
        help="write one line per request to PATH, or to standard output with - (default -)",
    )
    group.add_argument(
        "--no-access-log", dest="access_log", action="store_const", const=None, help="write no access log"
    )
    group.add_argument(
        "--access-log-format",
        choices=tuple(FORMATS),
        default="combined",
        help="combined: the Apache/nginx combined format; json: one object per line with side, method, path, "
        "status, bytes, duration, client and worker (default combined)",
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="the least severe server log events written to standard output (default info; "
        "the access log is set apart by --access-log)",
    )


def server_log_observer(level: str) -> ILogObserver:
    """Twisted's text format on standard output, from ``level`` up."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    return FilteringLogObserver(textFileLogObserver(sys.stdout), [predicate])


class AccessLog:
    """Formats records and hands their lines to a ``BufferedLines``."""

    def __init__(self, lines: BufferedLines, format_name: str) -> None:
        self._lines = lines
        self._format = FORMATS[format_name]

    def __call__(self, record: AccessRecord) -> None:
        self._lines.add(self._format(record))


def access_log(options: LogOptions, clock: IReactorTime, parent: IServiceCollection) -> AccessLog | None:
    """The access log the options ask for, its writer started and stopped with ``parent``."""
    if options.access_log is None:
        return None
    lines = BufferedLines(clock, options.access_log)
    lines.setServiceParent(parent)
    return AccessLog(lines, options.access_log_format)


def worker_id() -> int | None:
    """This process's worker id in a ``--workers`` pool, or ``None``."""
    worker = WorkerIdentity.from_environ()
    return None if worker is None else worker.id


class ObservedSite(StreamingSite):
    """A ``StreamingSite`` handing a record of every request it logs to its observers."""

    def __init__(
        self,
        resource: IResource,
        *,
        observers: Sequence[RequestObserver],
        side_of: SideOf,
        clock: IReactorTime,
        on_refused_connection: Callable[[], None] | None = None,
        on_channel_refused: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, **kwargs)
        self.observers = list(observers)
        self._on_refused_connection = on_refused_connection
        self._on_channel_refused = on_channel_refused
        self._side_of = side_of
        self._clock = clock
        self._worker = worker_id()
        self._arrived: WeakKeyDictionary[Request, float] = WeakKeyDictionary()
        make = self.requestFactory

        # Twisted only ever calls requestFactory, so a function is as good as a Request subclass.
        def timed(*args: Any, **kwargs: Any) -> Request:
            request: Request = make(*args, **kwargs)
            if self.observers:
                self._arrived[request] = clock.seconds()
                request.notifyFinish().addErrback(self._client_left, request)
            return request

        self.requestFactory = timed  # type: ignore[assignment]

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:  # type: ignore[override]
        """Beyond ``max_connections`` the site answers 503 without a request: no line, but a refusal."""
        before = self.open_connections
        protocol: Protocol | None = super().buildProtocol(addr)
        if self.open_connections == before and self._on_refused_connection is not None:
            self._on_refused_connection()
        return protocol

    def channelAnswered(self, status: int) -> None:
        if self._on_channel_refused is not None:
            self._on_channel_refused(status)

    def in_flight_by_side(self) -> Counter[str]:
        """The requests that arrived and were not observed yet, per side (read at a metrics scrape)."""
        return Counter(self._side_of((r.uri or b"").decode("latin-1").partition("?")[0]) for r in list(self._arrived))

    def log(self, request: Request) -> None:
        """Twisted's access-log hook: called once the response is finished (or upgraded)."""
        self._observe(request, client_left=False)

    def _client_left(self, reason: object, request: Request) -> None:
        self._observe(request, client_left=True)

    def _observe(self, request: Request, *, client_left: bool) -> None:
        started = self._arrived.pop(request, None)
        if started is None:  # observed already (a WebSocket's handshake, then its close)
            return
        now = self._clock.seconds()
        record = from_twisted(request, started, now, self._side_of, self._worker, client_left=client_left)
        for observe in self.observers:
            observe(record)
