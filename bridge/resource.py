"""``ASGIResource``: any ASGI 3 app as a leaf of a Twisted resource tree.

Modelled on ``twisted.web.wsgi.WSGIResource``: a leaf whose ``render``
returns ``NOT_DONE_YET``, whose ``root_path`` comes from where it is mounted
(``request.prepath``, as WSGIResource derives SCRIPT_NAME), and which refuses
children.  Unlike WSGIResource there are no threads: the app runs as an
asyncio Task on the reactor's own loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

from bridge._aio import reactor_loop
from bridge._app_call import Runner
from bridge._deadlines import Deadlines
from bridge._http_responder import HTTPResponder
from bridge._options import InFlight, Options
from bridge._proxy import apply_to_scope, parse_networks
from bridge._request_facts import request_facts
from bridge._scope import build_http_scope
from bridge.site import IStreamingBodyResource
from bridge.types import ASGIApp, Receive, Scope, Send
from bridge.websocket import WebSockets, is_websocket_upgrade

_log = Logger(namespace="bridge.resource")


def as_asgi3(app: Any) -> ASGIApp:
    """Accept legacy two-callable ASGI 2 apps as well (asgi.rst, Legacy Applications)."""
    call = getattr(app, "__call__", None)  # noqa: B004 -- we need the bound method, not callable()
    if inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call):
        return app  # type: ignore[no-any-return]

    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi3


@implementer(IResource, IStreamingBodyResource)
class ASGIResource:
    """Serve an ASGI application from inside a Twisted ``Site``.

    :param app: an ASGI 3 (or legacy ASGI 2) application.
    :param state: the lifespan state namespace; each scope gets a shallow copy.
        Pass ``LifespanService(app).state`` to share what startup stored.
    :param max_body_size: request bodies larger than this get 413 without
        being read; ``None`` means unlimited.
    :param disconnect_grace: seconds an app may keep running after its client
        disconnected before its task is cancelled.
    :param trusted_proxies: addresses or networks (``"10.0.0.0/8"``, ``"*"``)
        whose ``Forwarded``/``X-Forwarded-*`` headers are believed.
    :param max_in_flight: more concurrent app calls than this get 503 with
        ``Retry-After`` instead of queueing without bound; ``None``: no limit.
    :param response_timeout: an app that has not started its response after
        this many seconds is cancelled and the client gets 504; ``None``: wait.
    :param ws_max_message_size: incoming WebSocket messages larger than this
        many bytes close the connection with 1009; ``None``: no limit.
    :param ws_ping_interval: seconds between keepalive pings on each
        WebSocket; ``None``: no pings.
    :param ws_ping_timeout: seconds to wait for the pong before closing with
        1011; ``None``: never.
    :param clock: where timers run (grace, timeouts, pings); the reactor by
        default, a ``twisted.internet.task.Clock`` in tests.
    :param loop: the loop app calls run on; the reactor's by default.  Only
        in-process tests, which drive Twisted's objects by hand on a plain
        asyncio loop, pass another.
    :param ws_per_message_deflate: accept WebSocket compression
        (``permessage-deflate``, RFC 7692) when a client offers it.

    WebSocket upgrades (HTTP/1.1 only: Twisted's HTTP/2 stack cannot hand a
    stream over) are served by ``self.websockets``; see ``bridge.websocket``.
    """

    isLeaf = True

    def __init__(
        self,
        app: Any,
        *,
        state: Mapping[str, Any] | None = None,
        max_body_size: int | None = None,
        disconnect_grace: float = 3.0,
        trusted_proxies: Sequence[str] = (),
        max_in_flight: int | None = None,
        response_timeout: float | None = None,
        ws_max_message_size: int | None = 16 * 1024 * 1024,
        ws_ping_interval: float | None = 20.0,
        ws_ping_timeout: float | None = 20.0,
        ws_per_message_deflate: bool = True,
        clock: IReactorTime | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if loop is None:
            loop = reactor_loop()  # fails now, with a fix, if the reactor is wrong
        if clock is None:
            from twisted.internet import reactor as clock  # the asyncio reactor, checked above
        self.options = Options(
            state=state if state is not None else {},
            max_body_size=max_body_size,
            disconnect_grace=disconnect_grace,
            trusted_proxies=parse_networks(trusted_proxies),
            max_in_flight=max_in_flight,
            response_timeout=response_timeout,
            ws_max_message_size=ws_max_message_size,
            ws_ping_interval=ws_ping_interval,
            ws_ping_timeout=ws_ping_timeout,
            ws_per_message_deflate=ws_per_message_deflate,
        )
        self._in_flight = InFlight(max_in_flight)
        deadlines = Deadlines(clock, response_timeout) if response_timeout is not None else None  # type: ignore[arg-type]
        self._runner = Runner(as_asgi3(app), self.options, self._in_flight, loop, clock, deadlines)  # type: ignore[arg-type]
        #: Open WebSocket connections; ``close_all()`` them when draining.
        self.websockets = WebSockets(self._runner)

    @property
    def app(self) -> ASGIApp:
        return self._runner.app

    @property
    def state(self) -> Mapping[str, Any]:
        return self.options.state

    # -- IResource ------------------------------------------------------------

    def render(self, request: IRequest) -> bytes | int:
        if is_websocket_upgrade(request):
            return self.websockets.render(request)
        options = self.options
        scope = build_http_scope(request_facts(request, _HTTP_EXTENSIONS), options.state)
        if options.trusted_proxies:
            apply_to_scope(scope, options.trusted_proxies)
        responder = HTTPResponder(self._runner, request, scope)  # type: ignore[arg-type]
        if self._in_flight.full():
            self._in_flight.rejected += 1
            responder.refuse(503, f"{options.max_in_flight} requests already in flight", [(b"retry-after", b"1")])
        else:
            responder.start()
        return NOT_DONE_YET

    def getChildWithDefault(self, name: bytes, request: IRequest) -> IResource:
        raise RuntimeError("ASGIResource is a leaf: the ASGI app does its own routing")

    def putChild(self, path: bytes, child: IResource) -> None:
        raise RuntimeError("ASGIResource is a leaf: mount other resources beside it, not under it")

    # -- bookkeeping ----------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """HTTP app calls that have not finished yet (they may outlive their response)."""
        return len(self._in_flight)

    @property
    def abandoned(self) -> int:
        """Requests whose client left before the response was complete."""
        return self._in_flight.abandoned

    @property
    def rejected(self) -> int:
        """Requests refused with 503 because ``max_in_flight`` was reached."""
        return self._in_flight.rejected

    def wait_idle(self) -> Deferred[None]:
        """A Deferred that fires once no HTTP app call is running (for draining)."""
        return self._in_flight.wait_idle()


_HTTP_EXTENSIONS: dict[str, dict[str, Any]] = {"http.response.pathsend": {}}


__all__ = ["ASGIResource", "as_asgi3"]
