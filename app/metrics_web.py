# -*- test-case-name: tests.app.test_metrics -*-
"""Where the metrics of ``app.metrics`` are counted and served, on either front.

``--metrics PATH`` (default ``/metrics``; ``--no-metrics``) puts the Prometheus exposition at
PATH: ``MetricsPage`` in the Twisted tree, the library's ASGI app in front of the Hypercorn
front's. Both render on the event loop's thread, where the reactor's delayed calls and the
asyncio tasks can be read (the library's own Twisted resource renders in a thread of the pool
that runs WSGI, and imports the global reactor). ``WebSocketMeter`` counts WebSocket connections
and messages of one ASGI app at the ASGI level, so the bridge needs no counters of its own for them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, make_asgi_app
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twisted.web.resource import Resource
from twisted.web.server import Request

from app.metrics import Meters, MetricsCollector

DEFAULT_PATH = "/metrics"


@dataclass(frozen=True, kw_only=True)
class MetricsOptions:
    """Where the exposition is served; ``None``: no metrics at all (nothing is counted)."""

    metrics: str | None = DEFAULT_PATH


def add_metrics_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("metrics")
    group.add_argument(
        "--metrics",
        metavar="PATH",
        type=_path,
        default=DEFAULT_PATH,
        help=f"serve Prometheus metrics at PATH, on the site and beside any --mount (default {DEFAULT_PATH})",
    )
    group.add_argument("--no-metrics", dest="metrics", action="store_const", const=None, help="serve no metrics")


def _path(text: str) -> str:
    if not text.startswith("/") or text == "/" or "?" in text or "//" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path like /metrics")
    return text.rstrip("/")


def registry_for(collector: MetricsCollector) -> CollectorRegistry:
    """A registry of its own: only this server's metrics, none a library registered globally."""
    registry = CollectorRegistry(auto_describe=False)  # collect() reads the server: only at a scrape
    registry.register(collector)
    return registry


def put_metrics(root: Resource, path: str, registry: CollectorRegistry) -> None:
    """Serve the exposition at ``path`` of a Twisted tree, making the resources on the way."""
    *parents, name = (segment.encode() for segment in path.strip("/").split("/"))
    node = root
    for segment in parents:
        child = node.children.get(segment)
        if not isinstance(child, Resource) or child.isLeaf:
            child = Resource()
            node.putChild(segment, child)
        node = child
    node.putChild(name, MetricsPage(registry))


class MetricsPage(Resource):
    """The text exposition of ``registry``, rendered at once on the reactor's thread."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._registry)


class ServeMetrics:
    """ASGI: the exposition at ``path``, everything else to ``app`` (the Hypercorn front)."""

    def __init__(self, app: ASGIApp, path: str, registry: CollectorRegistry) -> None:
        self._app = app
        self._path = path
        self._metrics = make_asgi_app(registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self._path:
            await self._metrics(scope, receive, send)
        else:
            await self._app(scope, receive, send)


class WebSocketMeter:
    """ASGI middleware counting one app's WebSocket connections (open) and messages (each way)."""

    def __init__(self, app: ASGIApp, meters: Meters, side: str | Callable[[str], str]) -> None:
        self._app = app
        self._meters = meters
        self._side = side

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self._app(scope, receive, send)
            return
        meters = self._meters
        side = self._side if isinstance(self._side, str) else self._side(scope["path"])
        accepted = False

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                meters.websocket_message(side, "in")
            return message

        async def sending(message: Message) -> None:
            nonlocal accepted
            await send(message)
            if message["type"] == "websocket.send":
                meters.websocket_message(side, "out")
            elif message["type"] == "websocket.accept":
                accepted = True
                meters.websocket_opened(side)

        try:
            await self._app(scope, receiving, sending)
        finally:
            if accepted:
                meters.websocket_closed(side)
