# -*- test-case-name: tests.app.test_logging -*-
"""One access-log line per request, the same on both fronts: what a line holds and its two formats.

A line is made from an ``AccessRecord``, which either front fills in: the Twisted front from the
``twisted.web`` request its site logs (``from_twisted``), the Hypercorn front from the ASGI
messages it saw (``app.access_asgi``). ``combined`` is the Apache/nginx "combined" format every
log tool reads; ``json`` is one object per line carrying side, method, path, status, bytes,
duration, client and worker. Writing the lines is ``app.log_writer``'s job.
"""

from __future__ import annotations

import functools
import json as _json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.http import Request

from app.sides import SIDES

#: What a line is called when its path is under no side and no ``--mount`` prefix.
SITE = "site"


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much, per request
class AccessRecord:
    """What one line says about one request (the observers read it, none changes it)."""

    #: Seconds since the epoch when the request arrived.
    time: float
    side: str
    method: str
    #: The path, without the query string.
    path: str
    #: The query string, without ``?``; empty when there was none.
    query: str
    protocol: str
    status: int
    #: Body bytes sent (0 for HEAD).
    bytes: int
    #: Seconds from the request's arrival to its last byte.
    duration: float
    #: The peer's IP address, or ``-`` (a unix socket).
    client: str
    #: The worker of a ``--workers`` pool that served it, or ``None``.
    worker: int | None
    referer: str
    user_agent: str
    #: The client left before the response ended (its status says whether it had begun).
    client_left: bool = False


Formatter: TypeAlias = Callable[[AccessRecord], str]


class SideOf:
    """Names the side (or ``--mount`` prefix) a path is under: the ``side`` of its lines and metrics.

    The longest matching prefix wins; the site's sides are ``/twisted``, ``/asgi``, ``/wsgi``.
    ``site_paths`` (``/metrics``) are the server's own even under a mount at ``/``.
    """

    def __init__(self, mount_prefixes: Sequence[str] = (), site_paths: Sequence[str] = ()) -> None:
        prefixes = {f"/{name}": name for name in SIDES}
        prefixes.update({prefix.rstrip("/") or "/": prefix for prefix in mount_prefixes})
        self._prefixes = sorted(prefixes.items(), key=lambda item: len(item[0]), reverse=True)
        self._site_paths = frozenset(site_paths)

    def __call__(self, path: str) -> str:
        if path in self._site_paths:
            return SITE
        for prefix, name in self._prefixes:
            if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
                return name
        return SITE


#: The status logged for a request whose client left before its response began (nginx's).
CLIENT_CLOSED = 499


def from_twisted(
    request: Request, started: float, now: float, side_of: SideOf, worker: int | None, *, client_left: bool = False
) -> AccessRecord:
    """The record of a ``twisted.web`` request that finished, upgraded, or lost its client.

    A client that left before the response began is logged with ``CLIENT_CLOSED``; one that
    left during it with the response's status and the bytes it was sent.
    """
    address = request.getClientAddress()
    client = address.host if isinstance(address, IPv4Address | IPv6Address) else "-"
    uri = (request.uri or b"").decode("latin-1")
    path, _, query = uri.partition("?")
    return AccessRecord(
        time=started,
        side=side_of(path),
        method=(request.method or b"").decode("latin-1"),
        path=path,
        query=query,
        protocol=(request.clientproto or b"").decode("latin-1"),
        status=CLIENT_CLOSED if client_left and not request.startedWriting else int(request.code),
        bytes=int(request.sentLength),
        duration=max(0.0, now - started),
        client=client,
        worker=worker,
        referer=(request.getHeader(b"referer") or b"").decode("latin-1"),
        user_agent=(request.getHeader(b"user-agent") or b"").decode("latin-1"),
        client_left=client_left and not _delivered(request),
    )


def _delivered(request: Request) -> bool:
    """Whether the whole response was written before the client left.

    ``WSGIResource`` finishes a request a reactor turn after its last write, so a client may
    read a whole Content-Length response and close before ``finish()``: it did not leave early.
    """
    length = request.responseHeaders.getRawHeaders(b"content-length")
    if not request.startedWriting or length is None:
        return False
    return request.method == b"HEAD" or request.sentLength == int(length[0])


def combined(record: AccessRecord) -> str:
    """``127.0.0.1 - - [04/Dec/2026:20:28:57 +0000] "GET /p?q HTTP/1.1" 200 52 "-" "curl/8"``."""
    target = f"{record.path}?{record.query}" if record.query else record.path
    return (
        f'{record.client} - - [{_clf_time(record.time)}] "{_quoted(record.method)} {_quoted(target)} '
        f'{_quoted(record.protocol)}" {record.status} {record.bytes or "-"} '
        f'"{_quoted(record.referer) or "-"}" "{_quoted(record.user_agent) or "-"}"'
    )


def json(record: AccessRecord) -> str:
    """One JSON object; ``time`` in ISO 8601 UTC, ``duration`` in seconds."""
    fields = {
        "time": f"{_iso_second(int(record.time))}.{_millis(record.time):03d}Z",
        "side": record.side,
        "method": record.method,
        "path": record.path,
        "query": record.query,
        "protocol": record.protocol,
        "status": record.status,
        "bytes": record.bytes,
        "duration": round(record.duration, 6),
        "client": record.client,
        "worker": record.worker,
        "referer": record.referer,
        "user_agent": record.user_agent,
        "client_left": record.client_left,
    }
    return _json.dumps(fields, separators=(",", ":"))


FORMATS: dict[str, Formatter] = {"combined": combined, "json": json}


def _clf_time(when: float) -> str:
    return _clf_second(int(when))


# Formatting a time is most of a line's cost; requests in the same second share the text.
@functools.lru_cache(maxsize=4)
def _clf_second(second: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _millis(when: float) -> int:
    return int(when * 1000) % 1000


def _quoted(text: str) -> str:
    """Escape what would break a quoted field of a combined line (quotes, backslashes, controls)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
