"""ASGI apps that the reverse-adapter tests serve with Hypercorn, in a subprocess.

Nothing here imports ``twisted.internet.reactor``: these apps take the factory shape, the tree
built by a function once the reactor runs (``test_reverse_shapes.py`` covers the shapes that
install and import the reactor at import time).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from twisted.web.resource import IResource, Resource

from bridge.reverse import TwistedResourceApp


class LoopResource(Resource):
    """Whether the reactor runs on the loop that is running this request, and the threads."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        from twisted.internet import reactor

        same = getattr(reactor, "_asyncioEventloop", None) is asyncio.get_running_loop()
        return b"same loop: %r, threads: %d" % (same, threading.active_count())


def build_root() -> IResource:
    """Import the legacy tree now that the reactor runs; arm the shutdown marker, if asked."""
    from twisted.internet import reactor

    from tests.bridge import reverse_legacy

    marker = os.environ.get("REVERSE_SHUTDOWN_MARKER")
    if marker:
        text = "shutdown triggers fired"
        reactor.addSystemEventTrigger("before", "shutdown", Path(marker).write_text, text)
    root = reverse_legacy.build_root()
    root.putChild(b"loop", LoopResource())
    return root


#: The limit is above Twisted's 100 kB spooling threshold, so both body paths stay testable.
app = TwistedResourceApp(build_root, max_body_size=300_000)


async def app_without_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``app`` as a server without lifespan support would run it."""
    if scope["type"] != "lifespan":
        await app(scope, receive, send)


async def app_on_another_reactor(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``app`` in a process where Twisted's default (epoll) reactor got installed first."""
    if "twisted.internet.reactor" not in sys.modules:
        from twisted.internet import epollreactor

        epollreactor.install()
    await app(scope, receive, send)


legacy = TwistedResourceApp(build_root)
#: The tree mounted at /legacy of a Starlette app, which runs the reactor in its lifespan.
mounted = Starlette(routes=[Mount("/legacy", app=legacy)], lifespan=legacy.lifespan)
