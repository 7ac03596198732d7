"""What every Twisted-based launcher shares: arguments, reactor choice, a quiet Site, the run.

Reactors are installed here, before anything imports ``twisted.internet.reactor``; so launchers
import their resources and apps only after calling :func:`install_reactor`.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from twisted.web.http import Request
from twisted.web.server import Site

REACTORS = ("epoll", "asyncio", "uvloop", "bridge", "bridge-uvloop")


def arguments(description: str, *, apps: bool, reactors: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    if apps:
        parser.add_argument("--app", choices=("raw", "starlette"), required=True)
    if reactors:
        parser.add_argument("--reactor", choices=REACTORS, required=True)
        parser.add_argument(
            "--http",
            choices=("twisted", "httptools"),
            help="serve through bridge.StreamingSite with this HTTP/1.1 parser, as `hybrid serve --http` does "
            "(default: native rows use a plain Site, bridge rows Twisted's parser)",
        )
    return parser.parse_args()


def _uvloop() -> asyncio.AbstractEventLoop:
    import uvloop

    return uvloop.new_event_loop()


def install_reactor(kind: str) -> Any:
    """Install the named reactor and return it.

    ``bridge`` is whatever ``bridge.install_reactor()`` chooses (the hybrid server's reactor),
    ``bridge-uvloop`` the same on a uvloop loop; ``asyncio`` and ``uvloop`` are Twisted's stock
    asyncio reactor on the standard loop and on uvloop.
    """
    if kind == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    elif kind.startswith("bridge"):
        import bridge

        bridge.install_reactor(_uvloop() if kind == "bridge-uvloop" else None)
    else:
        from twisted.internet import asyncioreactor

        loop = _uvloop() if kind == "uvloop" else asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


class QuietSite(Site):
    """A Site without the access log: every server in the benchmark runs with access logs off."""

    def log(self, request: Request) -> None:
        pass


def serve(reactor: Any, site: Site, port: int) -> None:
    """Listen on loopback and run until SIGTERM (the harness stops servers by pid)."""
    reactor.listenTCP(port, site, interface="127.0.0.1", backlog=1024)
    reactor.run()
