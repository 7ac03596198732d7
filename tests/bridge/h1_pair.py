"""Both HTTP/1.1 channels in-process: the same bytes in, what a native resource saw and what went out.

A ``StreamingSite`` with one recording leaf resource, one connection over a
``StringTransport``, timers on a ``Clock``; ``Outcome`` is what the
differential tests compare: every request the resource saw (method, target,
version, headers, the ASGI scope's headers an ``ASGIResource`` would build,
body) and the status of every response on the wire.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request

from bridge import StreamingSite
from bridge._channel import GuardedHTTPChannel
from bridge._request_facts import request_facts
from bridge._scope import build_http_scope

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@dataclass(frozen=True)
class Seen:
    """One request as a native resource sees it."""

    method: bytes
    uri: bytes
    version: bytes
    headers: tuple[tuple[bytes, tuple[bytes, ...]], ...]
    #: The ASGI scope's headers, grouped by name (stable: each name's values keep their order).
    scope_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


@dataclass
class Outcome:
    seen: list[Seen] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    closed: bool = False


class Recorder(Resource):
    isLeaf = True

    def __init__(self, seen: list[Seen]) -> None:
        super().__init__()
        self._seen = seen

    def render(self, request: Request) -> bytes:
        assert request.content is not None
        headers = tuple(
            sorted((name.lower(), tuple(values)) for name, values in request.requestHeaders.getAllRawHeaders())
        )
        scope_headers = build_http_scope(request_facts(request))["headers"]
        grouped = tuple(sorted(scope_headers, key=itemgetter(0)))
        self._seen.append(
            Seen(request.method, request.uri, request.clientproto, headers, grouped, request.content.read())
        )
        return b"ok"


def feed(channel_class: type[GuardedHTTPChannel], pieces: Sequence[bytes], **limits: int) -> Outcome:
    """Send ``pieces`` one after the other on one connection to a site using ``channel_class``.

    ``limits`` are ``StreamingSite``'s ``max_header_count`` and ``max_header_bytes``.
    """
    outcome = Outcome()
    clock = Clock()
    site = StreamingSite(Recorder(outcome.seen), channel_class=channel_class, reactor=clock, **limits)
    protocol = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
    assert protocol is not None
    protocol._channel.callLater = clock.callLater  # type: ignore[attr-defined]
    transport = StringTransport()
    protocol.makeConnection(transport)
    for piece in pieces:
        if transport.disconnecting:
            break
        protocol.dataReceived(piece)
    outcome.statuses = [int(m.group(1)) for m in STATUS.finditer(transport.value())]
    outcome.closed = bool(transport.disconnecting)
    protocol.connectionLost(Failure(ConnectionDone()))  # lets go of request bodies spooled to files
    return outcome
