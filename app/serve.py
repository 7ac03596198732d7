# -*- test-case-name: tests.app.test_cli -*-
"""``hybrid serve``: the service tree behind the command line and the twistd plugin.

::

    LifespanService(site's Starlette app)        lifespan startup before anything listens
      LifespanService(each mounted ASGI app)     nested, so every app has started up
        Draining                                 on stop: requests in flight finish (app.shutdown)
          Listeners(--listen endpoints)          one StreamingSite on every endpoint

The limits and timeouts (``app.limits``) go to the site, each ASGI mount and each native
subtree (``app.in_flight``).

Beside it, ``DrainThreadPool`` makes a stop wait for the WSGI requests still running in the
reactor's thread pool (see ``app.thread_pool``).

``make_service`` builds it for any reactor; ``run`` is the process around it for the command
line: logging to stdout, the reactor's run, the exit status. Callers install the asyncio reactor
(``bridge.install_reactor``) first.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import IService, MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, DeferredList, FirstError, gatherResults, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorCore, IStreamServerEndpoint
from twisted.logger import Logger, globalLogBeginner
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from twisted.web.wsgi import WSGIResource

from app.access_log import SideOf
from app.in_flight import InFlightLimit, limit_native_sides
from app.limits import with_backlog
from app.logs import ObservedSite, access_log, server_log_observer
from app.metrics import Meters, MetricsCollector
from app.metrics_web import WebSocketMeter, put_metrics, registry_for
from app.mounts import Kind, Mount, MountError, MountSpec, load
from app.options import ServeOptions
from app.shutdown import Draining, ExitOnSecondSignal
from app.site import build_site
from app.thread_pool import DrainThreadPool
from app.worker import join_pool
from bridge import ASGIResource, LifespanService, StreamingSite, http_channel_class
from bridge._choices import NotInstalled, http_name, loop_name

_log = Logger(namespace="hybrid")


class ConfigError(Exception):
    """The options cannot be served; the message is meant for the person who typed them."""


class Listeners(Service):
    """Listens on every endpoint when started, with one log line naming the reactor and addresses.

    If any endpoint fails to listen, the failure is logged and ``on_failure`` is called (the
    command line stops the reactor and exits non-zero).
    """

    def __init__(
        self,
        reactor: IReactorCore,
        endpoints: Sequence[tuple[str, IStreamServerEndpoint]],
        site: StreamingSite,
        on_failure: Callable[[], None],
    ) -> None:
        self._reactor = reactor
        self._endpoints = endpoints
        self._site = site
        self._on_failure = on_failure
        self._ports: list[IListeningPort] = []

    def startService(self) -> None:
        super().startService()
        listening = [endpoint.listen(self._site) for _, endpoint in self._endpoints]
        gatherResults(listening, consumeErrors=True).addCallbacks(self._listening, self._failed)

    def _listening(self, ports: list[IListeningPort]) -> None:
        self._ports = ports
        addresses = [_address(description, port) for (description, _), port in zip(self._endpoints, ports, strict=True)]
        reactor = type(self._reactor)
        loop = getattr(self._reactor, "_asyncioEventloop", None)
        _log.info(
            "hybrid serving on {addresses} with {reactor} (http {http}, loop {loop})",
            addresses=" ".join(addresses),
            reactor=f"{reactor.__module__}.{reactor.__qualname__}",
            http=http_name(self._site.channel_class),
            loop=loop_name(loop) if loop is not None else "none",
        )

    def _failed(self, failure: Failure) -> None:
        if isinstance(failure.value, FirstError):
            failure = failure.value.subFailure
        _log.critical("Not serving: cannot listen: {reason}", reason=failure.getErrorMessage())
        self._on_failure()

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        ports, self._ports = self._ports, []
        return DeferredList([maybeDeferred(port.stopListening) for port in ports])


def _address(description: str, port: IListeningPort) -> str:
    """A listening address as a person would type it: a URL, or ``unix:PATH``."""
    host = port.getHost()
    if isinstance(host, UNIXAddress):
        return f"unix:{os.fsdecode(host.name or b'')}"
    if not isinstance(host, IPv4Address | IPv6Address):
        return str(host)
    scheme = "https" if description.partition(":")[0] in ("ssl", "tls") else "http"
    name = f"[{host.host}]" if ":" in host.host else host.host
    return f"{scheme}://{name}:{host.port}"


def make_service(options: ServeOptions, reactor: Any, on_failure: Callable[[], None]) -> IService:
    """The whole server as one service; raises ``ConfigError`` for options it cannot serve.

    ``on_failure`` is called when serving cannot start (an endpoint that cannot listen); a
    lifespan startup failure stops the reactor itself (see ``bridge.LifespanService``).
    """
    backlog = options.backlog()  # the endpoint string's own backlog= wins
    endpoints = [(text, _endpoint(reactor, with_backlog(text, backlog))) for text in options.listen]
    mounts = load_mounts(options.mount)
    if options.wsgi_threads is not None:
        reactor.suggestThreadPoolSize(options.wsgi_threads)
    lifespans: list[LifespanService] = []
    drains: list[Callable[[], Deferred[Any]]] = []
    meters = Meters() if options.metrics is not None else None  # counted only when served

    def serve_asgi(app: Any, side: str) -> ASGIResource:
        lifespan = LifespanService(app, **options.lifespan_arguments())
        lifespans.append(lifespan)
        metered = app if meters is None else WebSocketMeter(app, meters, side)
        resource = ASGIResource(
            metered, state=lifespan.state, trusted_proxies=options.trusted_proxy, **options.asgi_arguments()
        )
        drains.extend([resource.wait_idle, resource.websockets.close_all])
        return resource

    def limited(resource: IResource) -> IResource:
        return resource if options.max_in_flight is None else InFlightLimit(resource, options.max_in_flight)

    def serve(mount: Mount) -> IResource:
        if mount.kind is Kind.ASGI:
            return serve_asgi(mount.target, mount.spec.prefix)
        if mount.kind is Kind.WSGI:
            return limited(WSGIResource(reactor, reactor.getThreadPool(), mount.target))
        return limited(mount.target)

    root_mounts = [m for m in mounts if not m.spec.segments]
    if root_mounts:
        root = as_root(serve(root_mounts[-1]))
    else:
        site = build_site(reactor, options.delay)
        root = site.root(serve_asgi(site.asgi_app, "asgi"))
    for mount in mounts:
        if mount.spec.segments:
            put_mount(root, mount, serve(mount))
    limit_native_sides(root, options.max_in_flight)  # after the mounts, which may go inside a side

    top: MultiService = MultiService()
    DrainThreadPool(reactor, reactor.getThreadPool()).setServiceParent(top)
    parent = top
    for lifespan in lifespans:
        lifespan.setServiceParent(parent)
        parent = lifespan
    try:
        channel_class = http_channel_class(options.http)
    except NotInstalled as e:
        raise ConfigError(f"--http {options.http}: {e}") from None
    # Logging and metrics: the site hands each finished request to its observers (app.logs).
    observers = [o for o in (access_log(options, reactor, top), meters) if o is not None]
    side_of = SideOf([spec.prefix for spec in options.mount], [options.metrics] if options.metrics else [])
    refused = None if meters is None else meters.connection_refused
    channel_refused = None if meters is None else meters.channel_refused
    http_site = ObservedSite(
        root,
        observers=observers,
        side_of=side_of,
        clock=reactor,
        channel_class=channel_class,
        on_refused_connection=refused,
        on_channel_refused=channel_refused,
        **options.site_arguments(),
    )
    if meters is not None and options.metrics is not None:
        put_metrics(root, options.metrics, registry_for(MetricsCollector(meters, http_site.in_flight_by_side, reactor)))
    draining = Draining(reactor, http_site, drains, options.drain_timeout)
    draining.setServiceParent(parent)
    Listeners(reactor, endpoints, http_site, on_failure).setServiceParent(draining)
    ExitOnSecondSignal(lambda: http_site.in_flight).setServiceParent(top)
    join_pool(http_site, top, reactor, options.metrics)  # --workers: X-Worker, pooled /stats and /metrics
    return top


def load_mounts(specs: Sequence[MountSpec]) -> list[Mount]:
    """Import every ``--mount``; raises ``ConfigError`` for one that cannot be served."""
    prefixes = [spec.segments for spec in specs]
    for spec in specs:
        if prefixes.count(spec.segments) > 1:
            raise ConfigError(f"--mount: {spec.prefix} is mounted more than once")
    try:
        return [load(spec) for spec in specs]
    except MountError as e:
        raise ConfigError(str(e)) from None


def _endpoint(reactor: Any, description: str) -> IStreamServerEndpoint:
    try:
        endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    except Exception as e:
        raise ConfigError(f"--listen {description}: {e}") from None
    return endpoint


class _AppAtRoot(Resource):
    """A root whose unknown children are all served by one leaf (an ASGI app at ``/``).

    The app must see the full path: Twisted has already moved the first segment to
    ``prepath`` when it asks for a child, so it is put back.
    """

    def __init__(self, leaf: IResource) -> None:
        super().__init__()
        self._leaf = leaf

    def getChild(self, path: bytes, request: Request) -> IResource:
        assert request.prepath is not None and request.postpath is not None  # set while traversing
        request.postpath.insert(0, request.prepath.pop())
        return self._leaf


def as_root(resource: IResource) -> Resource:
    if isinstance(resource, Resource) and not resource.isLeaf:
        return resource
    return _AppAtRoot(resource)


def put_mount(root: Resource, mount: Mount, resource: IResource) -> None:
    """Put ``resource`` at the mount's prefix, creating intermediate resources as needed."""
    *parents, name = mount.spec.segments
    node = root
    for segment in parents:
        child = node.children.get(segment)
        if child is None:
            child = Resource()
            node.putChild(segment, child)
        if not isinstance(child, Resource) or child.isLeaf:
            raise ConfigError(
                f"--mount {mount.spec}: {segment.decode()!r} is served by a leaf resource, which cannot have children"
            )
        node = child
    node.putChild(name, resource)


#: Young-generation threshold and the two older ones' (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Fit the garbage collector to a server holding thousands of requests.

    Everything imported by now (Twisted, Starlette, the apps) lives as long as the process:
    ``gc.freeze()`` keeps it out of every later pass.  Each held request keeps a few hundred
    objects alive (coroutine frames, Twisted's Request, the scope), so with Python's default
    thresholds a collection runs every few requests and walks them all.  Measured with the
    bench's bridge + Starlette server under W2 (5,000 connections holding 1-s requests, one run
    each way on a shared machine): completion 0.38 -> 0.84 of ideal, CPU per request 0.44 ->
    0.20 ms; under W1 (64 keep-alive connections, ``hybrid serve``, freeze alone) p99 72 -> 28 ms.
    Since a finished request leaves no reference cycle (bench/PROFILE.md, section 0), the higher
    thresholds no longer cost memory: 21.8 KB RSS per held request against 21.6 untuned.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(options: ServeOptions) -> int:
    """Serve until SIGINT or SIGTERM; the exit status is non-zero if serving could not start."""
    from twisted.internet import reactor

    failed: list[str] = []

    def stop_failed() -> None:
        failed.append("listen")
        reactor.stop()

    try:
        service = make_service(options, reactor, stop_failed)
    except ConfigError as e:
        print(f"hybrid serve: error: {e}", file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([server_log_observer(options.log_level)], redirectStandardIO=False)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    tune_gc()
    reactor.run()
    lifespan_failed = any(isinstance(s, LifespanService) and s.failure is not None for s in _walk(service))
    return 1 if failed or lifespan_failed else 0


def _walk(service: IService) -> list[IService]:
    children = list(service) if isinstance(service, MultiService) else []
    return [service, *(s for child in children for s in _walk(child))]
