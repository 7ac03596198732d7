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

REACTORS = ("epoll", "asyncio", "uvloop", "bridge")


def arguments(description: str, *, apps: bool, reactors: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    if apps:
        parser.add_argument("--app", choices=("raw", "starlette"), required=True)
    if reactors:
        parser.add_argument("--reactor", choices=REACTORS, required=True)
    return parser.parse_args()


def install_reactor(kind: str) -> Any:
    """Install the named reactor and return it.

    ``bridge`` is whatever ``bridge.install_reactor()`` chooses (the hybrid server's reactor);
    ``uvloop`` is Twisted's asyncio reactor driving a uvloop loop.
    """
    if kind == "epoll":
        from twisted.internet import epollreactor

        epollreactor.install()
    elif kind == "bridge":
        import bridge

        bridge.install_reactor()
    else:
        from twisted.internet import asyncioreactor

        loop: asyncio.AbstractEventLoop
        if kind == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
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
