"""The reverse adapter: a Twisted resource tree served as an ASGI 3 app.

The last phase of a migration from Twisted to asyncio moves the service onto an asyncio ASGI
server (Hypercorn) while some ``twisted.web`` resources are not rewritten yet.  They keep
working unchanged: each request becomes a real ``twisted.web.server.Request`` over a channel that
speaks ASGI, and Twisted's asyncio reactor runs as a guest on the server's own loop, so
``reactor.callLater``, Deferreds and producers work as on a native Site (no second loop, no
thread).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from twisted.internet.error import ConnectionLost
from twisted.python.failure import Failure
from twisted.web.resource import IResource

from bridge.reverse import _scope as scopes
from bridge.reverse._body import BodyOutcome, read_body
from bridge.reverse._channel import ASGIChannel
from bridge.reverse._reactor import shutdown_reactor, start_reactor
from bridge.reverse._site import RootPathSite
from bridge.reverse._ws import serve_websocket
from bridge.types import Receive, Scope, Send

#: Default limit on request bodies.  Twisted itself has none; it spools large bodies to a
#: temporary file, so this bounds disk use rather than memory.
DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024

_TOO_LARGE = b"Request body too large\n"

log = logging.getLogger(__name__)


class TwistedResourceApp:
    """An ASGI 3 app serving a ``twisted.web`` resource tree on the server's running loop.

    ``resource`` is the root of the tree, or a callable returning it, called once the reactor
    runs.  A tree built at import time works too, when the module called
    ``bridge.install_reactor()`` before anything imported ``twisted.internet.reactor``: the ASGI
    server imports the module before it creates its loop, so that reactor starts on a loop that
    never runs, and it is moved onto the server's loop at startup (``_adopt``), with what the
    module scheduled at import.

    ``websocket`` scopes are served too: Twisted's ``WebSocketResource`` upgrades them (``_ws``).

    The reactor starts on ASGI ``lifespan.startup`` (or on the first request, with a warning,
    under a server that sends no lifespan events) and its shutdown triggers fire on
    ``lifespan.shutdown``.  Frameworks that run lifespan themselves, such as Starlette when
    this app is mounted in it, can use L{lifespan} as their lifespan context.

    Request bodies larger than ``max_body_size`` bytes (``None``: no limit) are answered 413.
    """

    def __init__(
        self,
        resource: IResource | Callable[[], IResource],
        *,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self._resource = resource
        self._max_body_size = max_body_size
        self._site: RootPathSite | None = None
        self._owns_reactor = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._serve_http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
        elif scope["type"] == "websocket":
            await serve_websocket(self._started_site(), scope, receive, send)

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the reactor for the duration of the block (a Starlette ``lifespan``)."""
        self._start()
        try:
            yield
        finally:
            await self._stop()

    def _start(self) -> RootPathSite:
        if self._site is None:
            self._owns_reactor = start_reactor()
            resource = self._resource
            root = resource if IResource.providedBy(resource) else resource()
            self._site = RootPathSite(root)
        return self._site

    def _started_site(self) -> RootPathSite:
        if self._site is None:
            log.warning(
                "TwistedResourceApp got a request before ASGI lifespan startup: starting the "
                "Twisted reactor now. Run it under a server with lifespan enabled so that "
                "startup errors stop the server instead of failing the first request."
            )
        return self._start()

    async def _stop(self) -> None:
        if self._owns_reactor:
            self._owns_reactor = False
            await shutdown_reactor()

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            self._start()
        except Exception as error:
            log.exception("Could not start the Twisted reactor")
            await send({"type": "lifespan.startup.failed", "message": str(error)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self._stop()
        await send({"type": "lifespan.shutdown.complete"})

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        channel = ASGIChannel(self._started_site(), scope)
        request = channel.request
        for name, value in scope["headers"]:
            request.requestHeaders.addRawHeader(name, value)
        request.parseCookies()
        outcome = await read_body(request, receive, scopes.content_length(scope), self._max_body_size)
        if outcome is not BodyOutcome.COMPLETE:
            if request.content is not None:
                request.content.close()
            if outcome is BodyOutcome.TOO_LARGE:
                await _send_too_large(send)
            return
        watcher = asyncio.create_task(_watch_disconnect(receive, channel))
        try:
            request.requestReceived(
                scope["method"].encode("ascii"),
                scopes.request_uri(scope),
                scopes.client_protocol(scope),
            )
            await channel.pump(send)
        finally:
            watcher.cancel()
            # Cancelled by the server, or send() failed: abandon the work as for a lost client.
            channel.connectionLost(Failure(ConnectionLost("The ASGI request was abandoned")))
            with suppress(asyncio.CancelledError):
                await watcher


async def _watch_disconnect(receive: Receive, channel: ASGIChannel) -> None:
    """Turn ``http.disconnect`` into ``connectionLost``: fails ``notifyFinish()``."""
    while (await receive())["type"] != "http.disconnect":
        pass
    channel.connectionLost(Failure(ConnectionLost("The client closed the connection")))


async def _send_too_large(send: Send) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(_TOO_LARGE)),
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": _TOO_LARGE})
