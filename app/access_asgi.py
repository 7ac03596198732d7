# -*- test-case-name: tests.app.test_logging -*-
"""The access log of an ASGI front (``hybrid serve --server hypercorn``), line for line the Twisted front's.

Hypercorn's own access log has its own format, so the front turns it off and wraps the whole app
in ``ObservedApp`` instead: it watches the messages of each HTTP request and hands the same
``AccessRecord`` as ``app.logs.ObservedSite`` to the same observers once the last body message
is sent, or when the app returns without sending it: a client that left is logged with 499
before the response began, or with its status and the bytes sent, as on the Twisted front. A
WebSocket gets its line at its handshake's answer, 101 or the denial's status, as the bridge logs it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access_log import CLIENT_CLOSED, AccessRecord, SideOf
from app.logs import RequestObserver


class ObservedApp:
    """ASGI middleware: a record of each request, handed to ``observers`` when its response is sent."""

    def __init__(
        self, app: ASGIApp, observers: Sequence[RequestObserver], side_of: SideOf, worker: int | None
    ) -> None:
        self._app = app
        self.observers = list(observers)
        self._side_of = side_of
        self._worker = worker
        self._in_flight: Counter[str] = Counter()

    def in_flight_by_side(self) -> Counter[str]:
        """HTTP requests that arrived and were not observed yet, per side (read at a metrics scrape)."""
        return +self._in_flight  # without the sides at zero

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.observers:
            await self._app(scope, receive, send)
            return
        started = time.time()
        status = 0
        sent = 0
        observed = False
        side = self._side_of(_raw_path(scope))
        if scope["type"] == "http":
            self._in_flight[side] += 1

        def observe(answered: int, client_left: bool = False) -> None:
            nonlocal observed
            if not observed:
                observed = True
                if scope["type"] == "http":
                    self._in_flight[side] -= 1
                self._observe(scope, started, answered, sent, client_left)

        async def watching(message: Message) -> None:
            nonlocal status, sent
            await send(message)
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif kind in ("http.response.body", "websocket.http.response.body"):
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    observe(status)
            elif kind == "websocket.accept":
                observe(101)
            elif kind == "websocket.close":  # before accepting: a denial, which the server sends as 403
                observe(403)

        try:
            await self._app(scope, receive, watching)
        except asyncio.CancelledError:  # the server gave up on it: its client left
            observe(status or CLIENT_CLOSED, client_left=True)
            raise
        except Exception:  # the server answers 500 if nothing was sent yet
            observe(status or 500)
            raise
        observe(status or CLIENT_CLOSED, client_left=True)

    def _observe(self, scope: Scope, started: float, status: int, sent: int, client_left: bool) -> None:
        headers = dict(scope.get("headers", []))
        client = scope.get("client")
        method = scope.get("method", "GET")
        path = _raw_path(scope)
        version = scope.get("http_version", "1.1")
        record = AccessRecord(
            time=started,
            side=self._side_of(path),
            method=method,
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            protocol=f"HTTP/{version}",
            status=status,
            bytes=0 if method == "HEAD" else sent,
            duration=max(0.0, time.time() - started),
            client=client[0] if client else "-",
            worker=self._worker,
            referer=headers.get(b"referer", b"").decode("latin-1"),
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
            client_left=client_left,
        )
        for observe in self.observers:
            observe(record)


def _raw_path(scope: Scope) -> str:
    """The path as the client sent it, as the Twisted front logs it."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.decode("latin-1")
