"""Twisted side of ASGI WebSockets: the upgrade, the wire protocol, flow control.

``twisted.web.websocket.WebSocketResource`` cannot carry ASGI: it writes the
101 before any app code runs, has no way to refuse, and never reports the
peer's close code (asgi-checklist 4.7).  So this module follows the *pattern*
of ``twisted/web/_websocket_impl.py`` instead of using it: keep wsproto's
``H11Handshake`` fed with the headers Twisted already parsed (no second HTTP
parser ever sees the raw request: the Daphne CVE-2026-44546 lesson), deliver
``websocket.connect`` first, and only on ``websocket.accept`` write the 101 and
take the connection over with ``HTTPChannel._protocolUpgradeForWebsockets``.
That hook is private Twisted API: pyproject pins ``twisted<27`` and
``tests/bridge/test_twisted_hooks.py`` pins its behaviour.

HTTP/2 (RFC 8441 extended CONNECT) is not supported: Twisted's ``H2Stream``
has no upgrade hook, so upgrade requests are only recognised on HTTP/1.1.

Everything here runs on the reactor thread, which is the asyncio loop's
thread, like ``bridge._http_responder``; each connection is a
``bridge._ws_session.WebSocketSession``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request

from bridge._flow import IdleWaiters
from bridge._proxy import apply_to_scope
from bridge._request_facts import request_facts
from bridge._scope import build_websocket_scope
from bridge._ws_actions import HandshakeError
from bridge._ws_cycle import WebSocketCycle
from bridge._ws_handshake import is_upgrade_offer
from bridge._ws_session import CLOSE_TIMEOUT, WebSocketSession

if TYPE_CHECKING:
    from bridge.resource import ASGIResource

_log = Logger(namespace="bridge.websocket")


def is_websocket_upgrade(request: IRequest) -> bool:
    """Does ``request`` ask for a WebSocket, on a connection we can take over?

    HTTP/2 streams lack ``_protocolUpgradeForWebsockets``; a request there
    (or an HTTP/1.0 one, which RFC 6455 excludes) is served as plain HTTP.
    """
    return (
        request.method == b"GET"
        and request.requestHeaders.hasHeader(b"upgrade")  # cheap test first: this runs on every request
        and request.clientproto == b"HTTP/1.1"  # type: ignore[attr-defined]
        and hasattr(request.channel, "_protocolUpgradeForWebsockets")  # type: ignore[attr-defined]
        and is_upgrade_offer(
            (name, value) for name, values in request.requestHeaders.getAllRawHeaders() for value in values
        )
    )


class WebSockets:
    """The WebSocket side of one ``ASGIResource``: options and open connections.

    :param resource: supplies the app, loop, lifespan state, trusted proxies
        and ``disconnect_grace``.
    :param max_message_size: incoming messages above this many bytes close
        the connection with 1009; ``None`` for no limit.
    :param ping_interval: seconds between keepalive pings; ``None`` for none.
    :param ping_timeout: seconds to wait for the pong before closing with
        1011; ``None`` never times out.
    :param per_message_deflate: accept ``permessage-deflate`` (RFC 7692)
        when the client offers it.
    """

    def __init__(
        self,
        resource: ASGIResource,
        *,
        max_message_size: int | None,
        ping_interval: float | None,
        ping_timeout: float | None,
        per_message_deflate: bool = True,
    ) -> None:
        self.resource = resource
        self.max_message_size = max_message_size
        self.per_message_deflate = per_message_deflate
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._sessions: set[WebSocketSession] = set()
        self._idle = IdleWaiters()

    @property
    def open(self) -> int:
        """Connections whose app call has not finished yet."""
        return len(self._sessions)

    def render(self, iRequest: IRequest) -> int:
        """Start the ASGI ``websocket`` scope for an upgrade request."""
        request = cast(Request, iRequest)  # what a Site renders
        resource = self.resource
        facts = request_facts(request, {"websocket.http.response": {}})
        scope = build_websocket_scope(facts, resource.state)
        if resource.trusted_proxies:
            apply_to_scope(scope, resource.trusted_proxies)
        try:
            cycle = WebSocketCycle(
                facts.headers,
                facts.uri,
                max_message_size=self.max_message_size,
                per_message_deflate=self.per_message_deflate,
            )
        except HandshakeError as e:
            _refuse_handshake(request, e, resource.loop)
            return NOT_DONE_YET
        session = WebSocketSession(self, request, scope, cycle)
        self._sessions.add(session)
        session.start(resource.app)
        return NOT_DONE_YET

    def close_all(self, code: int = 1001, reason: str = "server shutting down") -> Deferred[None]:
        """Close every connection (1001 "going away"); fires once their apps have finished.

        Meant for draining on shutdown, e.g.
        ``LifespanService.add_drain(resource.websockets.close_all)``: unlike
        HTTP requests, WebSockets do not end by themselves.
        """
        for session in list(self._sessions):
            session.server_close(code, reason)
        return self._idle.wait(bool(self._sessions))

    def session_done(self, session: WebSocketSession) -> None:
        self._sessions.discard(session)
        self._idle.notify(bool(self._sessions))


def _refuse_handshake(request: Request, error: HandshakeError, loop: asyncio.AbstractEventLoop) -> None:
    """Answer an invalid upgrade request (400, or 426 for a wrong version) over plain HTTP.

    Written on the next loop turn: ``StreamingSite`` renders while Twisted's
    header parser is still on the stack.
    """
    _log.info(
        "Refusing WebSocket handshake for {uri}: {error} {detail}",
        uri=request.uri,
        error=str(error),
        detail=repr(error.__cause__) if error.__cause__ is not None else "",
    )
    gone: list[Failure] = []
    request.notifyFinish().addErrback(gone.append)

    def answer() -> None:
        if gone:
            return
        body = f"{error}\n".encode()
        request.setResponseCode(error.status)
        for name, value in error.headers:
            request.responseHeaders.addRawHeader(name, value)
        request.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
        request.responseHeaders.setRawHeaders(b"content-length", [b"%d" % len(body)])
        request.responseHeaders.setRawHeaders(b"connection", [b"close"])
        request.channel.persistent = False
        request.write(body)
        request.finish()

    loop.call_soon(answer)


__all__ = ["CLOSE_TIMEOUT", "WebSocketSession", "WebSockets", "is_websocket_upgrade"]
