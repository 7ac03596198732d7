# -*- test-case-name: tests.app.test_endpoints -*-
"""``hybrid serve --server hypercorn``: the whole hybrid site under Hypercorn.

The second phase of a migration: an asyncio server owns the loop, the Starlette app is served
directly, and the native Twisted resources keep working through ``bridge.TwistedResourceApp``,
with Twisted's asyncio reactor as a guest on Hypercorn's loop::

    Starlette (lifespan: the reactor, then the asyncio side's own lifespan and its state)
      Mount /asgi  the asyncio side's Starlette app
      Mount /      TwistedResourceApp(the native tree: index, /twisted, /stats, /healthz)

Same URLs, bodies and ``/stats`` as the Twisted front, and the same ``--mount``s (``build_app``).
The ``--listen`` endpoint strings become sockets bound here and handed to Hypercorn (``fd://``),
so that port 0 works and the startup line names the real addresses; ``systemd:`` endpoints are
the sockets a ``--workers`` supervisor (``app.workers``) or systemd passed, and in a pool every
response carries ``X-Worker`` and ``/stats`` is the pool's (``app.worker``).  Callers install the
asyncio reactor first.

The limits and timeouts Hypercorn has an equivalent for are mapped onto its config
(``Limits.hypercorn_config``); the native sides keep their in-flight and body limits, which
this front applies itself. The README's "Limits and timeouts" table says which are missing.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.routing import Mount
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import AdoptedStreamServerEndpoint, serverFromString
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger, globalLogBeginner
from twisted.web.resource import IResource, Resource
from twisted.web.wsgi import WSGIResource

from app.access_asgi import ObservedApp
from app.access_log import SideOf
from app.in_flight import InFlightLimit, limit_native_sides
from app.logs import access_log, server_log_observer, worker_id
from app.metrics import Meters, MetricsCollector
from app.metrics_web import ServeMetrics, WebSocketMeter, registry_for
from app.mounts import Kind
from app.mounts import Mount as MountedObject
from app.options import ServeOptions
from app.serve import ConfigError, as_root, load_mounts, put_mount, tune_gc
from app.site import HybridSite, build_site
from app.worker import WorkerIdentity, share_stats
from bridge._aio import as_future, reactor_loop
from bridge._lifespan import Lifespan
from bridge.reverse import TwistedResourceApp
from bridge.types import ASGIApp, Message, Receive, Scope, Send

_log = Logger(namespace="hybrid")


class ListenError(ValueError):
    """A ``--listen`` endpoint this front cannot serve; the message names it."""


def build_app(options: ServeOptions, reactor: Any, mounts: Sequence[MountedObject] = ()) -> Starlette:
    """The hybrid site, with ``--mount``s, as one ASGI app.

    As on the Twisted front, a mount at ``/`` replaces the demo site and the others go over it.
    ASGI apps are routed to directly, each with its lifespan run in the server's.  Twisted
    resources and WSGI apps (on the reactor's thread pool, through Twisted's ``WSGIResource``)
    join the native tree behind one ``TwistedResourceApp``; under an ASGI app at ``/`` their
    prefixes are routed to it.
    """
    asgi_mounts = [m for m in mounts if m.kind is Kind.ASGI]
    tree_mounts = [m for m in mounts if m.kind is not Kind.ASGI]
    lifespans = [Lifespan(m.target, {}, **options.lifespan_arguments()) for m in asgi_mounts]
    apps = {m.spec: WithState(m.target, each.state) for m, each in zip(asgi_mounts, lifespans, strict=True)}
    routes = [Mount(m.spec.prefix.rstrip("/"), app=apps[m.spec]) for m in asgi_mounts if m.spec.segments]
    root_app = next((apps[m.spec] for m in reversed(asgi_mounts) if not m.spec.segments), None)
    site: HybridSite | None = None
    root_resources = [m for m in tree_mounts if not m.spec.segments]
    if root_resources:
        root = as_root(_tree_resource(root_resources[-1], options, reactor))
    elif root_app is None:
        site = build_site(reactor, options.delay)
        root = site.native_root()
        routes.append(Mount("/asgi", app=site.asgi_app))
    else:
        root = Resource()
    for mount in tree_mounts:
        if mount.spec.segments:
            put_mount(root, mount, _tree_resource(mount, options, reactor))
    limit_native_sides(root, options.max_in_flight)
    worker = WorkerIdentity.from_environ()
    peer_stats = share_stats(worker, root, reactor) if worker is not None else None
    native = TwistedResourceApp(root, max_body_size=options.max_body_size)
    if root_app is None:
        routes.append(Mount("/", app=native))
    else:
        prefixes = [m.spec.prefix.rstrip("/") for m in tree_mounts]
        routes.append(Mount("/", app=ByPrefix(prefixes, native, root_app)))

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        # Mounted apps get no lifespan of their own: run them all here.  The asyncio side's
        # state (its counters) becomes the server's, which Hypercorn copies into every scope.
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(native.lifespan())
            if peer_stats is not None:
                peer_stats.startService()
                stack.push_async_callback(as_future_of, peer_stats.stopService)
            for each in lifespans:
                await each.startup()
                stack.push_async_callback(each.shutdown)
            state: Mapping[str, Any] | None = None
            if site is not None:
                context: Any = site.asgi_app.router.lifespan_context(site.asgi_app)
                state = await stack.enter_async_context(context)
            yield state or {}

    return Starlette(routes=routes, lifespan=lifespan)


def _tree_resource(mount: MountedObject, options: ServeOptions, reactor: Any) -> IResource:
    """A resource or WSGI mount as a resource, behind ``--max-in-flight`` as on the Twisted front."""
    resource: IResource = mount.target
    if mount.kind is Kind.WSGI:
        resource = WSGIResource(reactor, reactor.getThreadPool(), mount.target)
    return resource if options.max_in_flight is None else InFlightLimit(resource, options.max_in_flight)


async def as_future_of(stop: Callable[[], Any]) -> None:
    """Await a Twisted ``stopService()``, which may return a Deferred."""
    result = stop()
    if isinstance(result, Deferred):
        await as_future(result)


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
        args = dict(part.split("=", 1) for part in positional if "=" in part)
        if kind == "systemd":
            sock = _inherited(description)
            addresses.append(_url(sock))
        elif kind == "unix" and positional:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(positional[0])
            sock.listen(config.backlog)
            addresses.append(f"unix:{positional[0]}")
        elif kind in ("tcp", "ssl") and positional and positional[0].isdigit():
            host = args.get("interface", "0.0.0.0")
            sock = socket.create_server((host, int(positional[0])), backlog=config.backlog)
            addresses.append(_url(sock, "https" if kind == "ssl" else "http"))
        else:
            raise ListenError(f"--listen {description}: not a tcp:, ssl:, unix: or systemd: endpoint")
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


def _inherited(description: str) -> socket.socket:
    """The listening socket a ``systemd:`` endpoint names, passed by systemd or by ``hybrid
    serve --workers`` (``app.workers``).  Twisted's parser reads (and consumes) ``LISTEN_FDS``."""
    from twisted.internet import reactor

    try:
        endpoint = serverFromString(reactor, description)
    except Exception as e:
        raise ListenError(f"--listen {description}: {e}") from None
    if not isinstance(endpoint, AdoptedStreamServerEndpoint):
        raise ListenError(f"--listen {description}: not a passed socket")
    return socket.socket(fileno=endpoint.fileno)


def _url(sock: socket.socket, scheme: str = "http") -> str:
    host, port = sock.getsockname()[:2]
    name = f"[{host}]" if ":" in host else host
    return f"{scheme}://{name}:{port}"


class WithState:
    """Gives a mounted app's requests the state its own lifespan filled (a copy per request, as
    the lifespan spec asks), not the server's: each mount has its lifespan, as on the Twisted front."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "state": dict(self._state)}
        await self._app(scope, receive, send)


class ByPrefix:
    """Sends requests under any of ``prefixes`` (the path itself or below it) to ``native``, the
    rest to ``other``: the Twisted tree's mounts over an ASGI app mounted at ``/``."""

    def __init__(self, prefixes: Sequence[str], native: ASGIApp, other: ASGIApp) -> None:
        self._prefixes = tuple(prefixes)
        self._native = native
        self._other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        ours = any(path == prefix or path.startswith(prefix + "/") for prefix in self._prefixes)
        await (self._native if ours else self._other)(scope, receive, send)


class WorkerTag:
    """Marks every HTTP response with ``X-Worker: <id>``, as ``app.worker`` does on the Twisted front."""

    def __init__(self, app: ASGIApp, worker_id: int) -> None:
        self._app = app
        self._header = (b"x-worker", str(worker_id).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self._header]}
            await send(message)

        await self._app(scope, receive, tagged)


def run(options: ServeOptions) -> int:
    """Serve until SIGINT or SIGTERM (Hypercorn's handlers); non-zero if serving cannot start."""
    from twisted.internet import reactor

    try:
        mounts = load_mounts(options.mount)
        config, addresses = configure(options.listen, options.backlog())
    except (ConfigError, ListenError, OSError) as e:
        print(f"hybrid serve: error: {e}", file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([server_log_observer(options.log_level)], redirectStandardIO=False)
    options.hypercorn_config(config)
    app: ASGIApp = build_app(options, reactor, mounts)
    worker = WorkerIdentity.from_environ()
    if worker is not None:
        app = WorkerTag(app, worker.id)
    # Logging and metrics: the same observers as on the Twisted front (app.logs), fed by ObservedApp.
    services = MultiService()
    meters = Meters() if options.metrics is not None else None
    observers = [o for o in (access_log(options, reactor, services), meters) if o is not None]
    side_of = SideOf([spec.prefix for spec in options.mount], [options.metrics] if options.metrics else [])
    if meters is not None:
        app = WebSocketMeter(app, meters, side_of)
    if meters is not None and options.metrics is not None:  # inside ObservedApp: a scrape is a request too
        collector = MetricsCollector(meters, lambda: observed.in_flight_by_side(), reactor)
        app = ServeMetrics(app, options.metrics, registry_for(collector))
    observed = ObservedApp(app, observers, side_of, worker_id())
    if options.wsgi_threads is not None:
        IReactorThreads(reactor).suggestThreadPoolSize(options.wsgi_threads)
    kind = type(reactor)
    _log.info(
        "hybrid serving on {addresses} with {reactor} under Hypercorn",
        addresses=" ".join(addresses),
        reactor=f"{kind.__module__}.{kind.__qualname__}",
    )
    loop = reactor_loop()
    tune_gc()
    services.startService()
    try:
        loop.run_until_complete(serve(observed, config))  # type: ignore[arg-type]  # Starlette types its scope loosely
    except Exception as e:
        _log.critical("Not serving: {error}", error=e)
        return 1
    finally:
        services.stopService()
        loop.run_until_complete(loop.shutdown_asyncgens())
    return 0
