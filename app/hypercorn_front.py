# -*- test-case-name: tests.app.test_endpoints -*-
"""``hybrid serve --server hypercorn``: the whole hybrid site under Hypercorn.

The second phase of a migration: an asyncio server owns the loop, the Starlette app is served
directly, and the native Twisted resources keep working through ``bridge.TwistedResourceApp``,
with Twisted's asyncio reactor as a guest on Hypercorn's loop::

    Starlette (lifespan: the reactor, then the asyncio side's own lifespan and its state)
      Mount /asgi  the asyncio side's Starlette app
      Mount /      TwistedResourceApp(the native tree: index, /twisted, /stats, /healthz)

Same URLs, bodies and ``/stats`` as the Twisted front.  The ``--listen`` endpoint strings
become sockets bound here and handed to Hypercorn (``fd://``), so that port 0 works and the
startup line names the real addresses.  Callers install the asyncio reactor first.

The limits and timeouts Hypercorn has an equivalent for are mapped onto its config
(``Limits.hypercorn_config``); the native sides keep their in-flight and body limits, which
this front applies itself. The README's "Limits and timeouts" table says which are missing.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.routing import Mount
from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger, globalLogBeginner

from app.access_asgi import ObservedApp
from app.access_log import SideOf
from app.in_flight import limit_native_sides
from app.limits import Limits
from app.logs import access_log, server_log_observer, worker_id
from app.metrics import Meters, MetricsCollector
from app.metrics_web import ServeMetrics, WebSocketMeter, registry_for
from app.options import ServeOptions
from app.site import HybridSite, build_site
from bridge._aio import reactor_loop
from bridge.reverse import TwistedResourceApp

_log = Logger(namespace="hybrid")


class ListenError(ValueError):
    """A ``--listen`` endpoint this front cannot serve; the message names it."""


def build_app(site: HybridSite, limits: Limits) -> Starlette:
    """The hybrid site as one ASGI app."""
    root = site.native_root()
    limit_native_sides(root, limits.max_in_flight)
    native = TwistedResourceApp(root, max_body_size=limits.max_body_size)
    asgi_lifespan = site.asgi_app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        # Mounted apps get no lifespan of their own: run both here.  The asyncio side's state
        # (its counters) becomes the server's, which Hypercorn copies into every request scope.
        async with native.lifespan(), asgi_lifespan(site.asgi_app) as state:
            yield state or {}

    routes = [Mount("/asgi", app=site.asgi_app), Mount("/", app=native)]
    return Starlette(routes=routes, lifespan=lifespan)


def configure(listen: list[str], backlog: int | None = None) -> tuple[Config, list[str]]:
    """Hypercorn's config for ``--listen`` endpoints, and their addresses as URLs.

    Understands ``tcp:PORT[:interface=HOST]``, ``ssl:PORT:privateKey=KEY:certKey=CERT
    [:interface=HOST]`` and ``unix:PATH``; raises ``ListenError`` for anything else.  The
    sockets are listening on return; Hypercorn owns (and closes) their file descriptors.
    """
    config = Config()
    # As on the Twisted front (Limits.backlog), unless an endpoint string sets backlog=. Hypercorn
    # listens again on each socket with its one config.backlog, so the largest given applies to all.
    explicit = [int(v) for d in listen for k, _, v in (p.partition("=") for p in d.split(":")) if k == "backlog"]
    if explicit:
        config.backlog = max(explicit)
    elif backlog is not None:
        config.backlog = backlog
    config.include_server_header = False  # Twisted's Server and Date, as on the Twisted front
    config.include_date_header = False
    config.accesslog = None  # app.access_asgi writes the Twisted front's lines instead
    addresses: list[str] = []
    secure: list[str] = []
    insecure: list[str] = []
    for description in listen:
        kind, *positional = description.split(":")
        args = dict(part.split("=", 1) for part in positional[1:] if "=" in part)
        if kind == "unix" and positional:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(positional[0])
            sock.listen(config.backlog)
            addresses.append(f"unix:{positional[0]}")
        elif kind in ("tcp", "ssl") and positional and positional[0].isdigit():
            host = args.get("interface", "0.0.0.0")
            sock = socket.create_server((host, int(positional[0])), backlog=config.backlog)
            port = sock.getsockname()[1]
            name = f"[{host}]" if ":" in host else host
            addresses.append(f"{'https' if kind == 'ssl' else 'http'}://{name}:{port}")
        else:
            raise ListenError(f"--listen {description}: not a tcp:, ssl: or unix: endpoint")
        bind = f"fd://{sock.detach()}"
        if kind == "ssl":
            if "privateKey" not in args or "certKey" not in args:
                raise ListenError(f"--listen {description}: ssl needs privateKey= and certKey=")
            config.keyfile, config.certfile = args["privateKey"], args["certKey"]
            secure.append(bind)
        else:
            insecure.append(bind)
    config.bind, config.insecure_bind = (secure, insecure) if secure else (insecure, [])
    return config, addresses


def run(options: ServeOptions) -> int:
    """Serve until SIGINT or SIGTERM (Hypercorn's handlers); non-zero if serving cannot start."""
    if options.mount:
        print("hybrid serve: error: --mount is not supported with --server hypercorn yet", file=sys.stderr)
        return 2
    from twisted.internet import reactor

    try:
        config, addresses = configure(options.listen, options.backlog())
    except (ListenError, OSError) as e:
        print(f"hybrid serve: error: {e}", file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([server_log_observer(options.log_level)], redirectStandardIO=False)
    options.hypercorn_config(config)
    # Logging and metrics: the same observers as on the Twisted front (app.logs), fed by ObservedApp.
    services = MultiService()
    meters = Meters() if options.metrics is not None else None
    observers = [o for o in (access_log(options, reactor, services), meters) if o is not None]
    site_app: Any = build_app(build_site(reactor, options.delay), options)
    if meters is not None:
        site_app = WebSocketMeter(site_app, meters, SideOf())
    if meters is not None and options.metrics is not None:  # inside ObservedApp: a scrape is a request too
        collector = MetricsCollector(meters, lambda: app.in_flight_by_side(), reactor)
        site_app = ServeMetrics(site_app, options.metrics, registry_for(collector))
    app = ObservedApp(site_app, observers, SideOf(), worker_id())
    if options.wsgi_threads is not None:
        IReactorThreads(reactor).suggestThreadPoolSize(options.wsgi_threads)
    kind = type(reactor)
    _log.info(
        "hybrid serving on {addresses} with {reactor} under Hypercorn",
        addresses=" ".join(addresses),
        reactor=f"{kind.__module__}.{kind.__qualname__}",
    )
    loop = reactor_loop()
    services.startService()
    try:
        loop.run_until_complete(serve(app, config))  # type: ignore[arg-type]  # Starlette types its scope loosely
    except Exception as e:
        _log.critical("Not serving: {error}", error=e)
        return 1
    finally:
        services.stopService()
        loop.run_until_complete(loop.shutdown_asyncgens())
    return 0
