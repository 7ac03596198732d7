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

This module holds the per-resource side (which requests upgrade, the open
connections); ``bridge._ws_session`` runs one connection.  Everything runs on
the reactor thread, which is the asyncio loop's thread.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request

from bridge._app_call import Runner
from bridge._options import InFlight
from bridge._proxy import apply_to_scope
from bridge._request_facts import request_facts
from bridge._scope import build_websocket_scope
from bridge._ws_actions import HandshakeError
from bridge._ws_cycle import WebSocketCycle
from bridge._ws_handshake import is_upgrade_offer
from bridge._ws_session import WebSocketSession

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

    :param runner: the app, loop, clock and options (lifespan state, trusted
        proxies, ``disconnect_grace``, and the ``ws_*`` limits: incoming
        messages above ``ws_max_message_size`` bytes close the connection with
        1009; pings every ``ws_ping_interval`` seconds, closing with 1011 when
        no pong came within ``ws_ping_timeout``; ``None`` switches each off;
        ``ws_per_message_deflate`` accepts ``permessage-deflate``, RFC 7692,
        when the client offers it).
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        options = runner.options
        self.max_message_size = options.ws_max_message_size
        self.ping_interval = options.ws_ping_interval
        self.ping_timeout = options.ws_ping_timeout
        self.per_message_deflate = options.ws_per_message_deflate
        self._sessions = InFlight()

    @property
    def open(self) -> int:
        """Connections whose app call has not finished yet."""
        return len(self._sessions)

    def render(self, iRequest: IRequest) -> int:
        """Start the ASGI ``websocket`` scope for an upgrade request."""
        request = cast(Request, iRequest)  # what a Site renders
        runner = self.runner
        facts = request_facts(request, {"websocket.http.response": {}})
        scope = build_websocket_scope(facts, runner.options.state)
        if runner.options.trusted_proxies:
            apply_to_scope(scope, runner.options.trusted_proxies)
        try:
            cycle = WebSocketCycle(
                facts.headers,
                facts.uri,
                max_message_size=self.max_message_size,
                per_message_deflate=self.per_message_deflate,
            )
        except HandshakeError as e:
            _refuse_handshake(request, e, runner.clock)
            return NOT_DONE_YET
        WebSocketSession(runner, self._sessions, request, scope, cycle).start()
        return NOT_DONE_YET

    def close_all(self, code: int = 1001, reason: str = "server shutting down") -> Deferred[None]:
        """Close every connection (1001 "going away"); fires once their apps have finished.

        Meant for draining on shutdown, e.g.
        ``LifespanService.add_drain(resource.websockets.close_all)``: unlike
        HTTP requests, WebSockets do not end by themselves.
        """
        for session in self._sessions.calls():
            assert isinstance(session, WebSocketSession)
            session.server_close(code, reason)
        return self._sessions.wait_idle()


def _refuse_handshake(request: Request, error: HandshakeError, clock: IReactorTime) -> None:
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

    clock.callLater(0, answer)


__all__ = ["WebSockets", "is_websocket_upgrade"]
