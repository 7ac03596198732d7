# -*- test-case-name: tests.app.test_site -*-
"""The hybrid site's pieces and how they fit into one resource tree.

``build_site`` makes the pieces once, for one reactor. ``HybridSite.root`` assembles the tree a
Twisted ``Site`` serves (``app.serve`` mounts the Starlette app at ``/asgi`` through
``bridge.ASGIResource``); ``HybridSite.native_root`` is the same tree without ``/asgi``, for a
front that serves the Starlette app itself, such as Hypercorn with the reverse adapter. The sides
are listed in ``app.sides``. Nothing here imports the bridge or the global reactor.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.static import File

from app.asgi_app import create_app
from app.live import live_route
from app.native import AsyncioDelayedResource, DelayedResource, StreamingResource
from app.pages import STATIC, HealthResource, IndexResource, StatsResource
from app.sides import SIDES
from app.stats import Stats
from app.tutorial import DEFAULT_DELAY
from app.wsgi_app import wsgi_side


@dataclass(frozen=True)
class HybridSite:
    """Everything the hybrid site serves, built for one reactor."""

    stats: Stats
    #: The native ``/twisted`` subtree.
    native: IResource
    #: The ``/wsgi`` side: a WSGI app in ``WSGIResource``, on the reactor's thread pool.
    wsgi: IResource
    #: The Starlette app of the asyncio side; it needs lifespan (its counters live in the state).
    asgi_app: Starlette

    def native_root(self) -> Resource:
        """A new root with the index, ``/static``, ``/twisted``, ``/wsgi``, ``/stats``, ``/healthz``; no ``/asgi``."""
        root = Resource()
        root.putChild(b"", IndexResource())
        root.putChild(b"twisted", self.native)
        root.putChild(b"wsgi", self.wsgi)
        root.putChild(b"stats", StatsResource(self.stats))
        root.putChild(b"healthz", HealthResource())
        root.putChild(b"static", File(str(STATIC)))
        return root

    def root(self, asgi: IResource) -> Resource:
        """A new root with ``asgi``, the resource serving ``asgi_app``, mounted at ``/asgi``.

        On a Twisted Site that is ``bridge.ASGIResource(site.asgi_app, state=...)`` with the
        state of a ``bridge.LifespanService`` running ``asgi_app``.
        """
        root = self.native_root()
        root.putChild(b"asgi", asgi)
        return root


def build_site(reactor: IReactorTime, delay: float = DEFAULT_DELAY) -> HybridSite:
    """Build the site's pieces; ``delay`` is the default when a request has no ``?delay=``."""
    stats = Stats(SIDES, reactor)
    native = Resource()
    native.putChild(b"delayed", DelayedResource(reactor, stats["twisted"], delay))
    native.putChild(b"stream", StreamingResource(reactor, stats["twisted"], delay))
    native.putChild(b"await-asyncio", AsyncioDelayedResource(reactor, stats["twisted"], delay))
    asgi_app = create_app(stats["asgi"], reactor, delay, extra_routes=[live_route(stats)])
    wsgi = wsgi_side(IReactorThreads(reactor), stats["wsgi"], delay)  # on the reactor's thread pool
    return HybridSite(stats=stats, native=native, wsgi=wsgi, asgi_app=asgi_app)
