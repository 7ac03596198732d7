# -*- test-case-name: tests.deploy.test_workers -*-
"""The worker's side of ``hybrid serve --workers N`` (the supervisor is ``app.workers``).

A worker is an ordinary ``hybrid serve``; ``join_pool`` adds what being one of N needs, and
does nothing outside a pool:

- every response carries ``X-Worker: <id>``, so a client (or a test) can tell who answered;
- ``/stats`` answers for the whole pool: each worker also serves its own ``/stats`` on a
  private unix socket in the supervisor's directory, and the worker that gets the request asks
  the others there and merges (``merge_snapshots``), listing each worker under ``workers``;
- ``/metrics`` likewise: every worker's series, labelled with its ``worker`` (``app.pool_metrics``);
- a worker whose supervisor has gone (killed with SIGKILL, so it could not forward a SIGTERM)
  stops by itself instead of serving on forever.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.application.internet import TimerService
from twisted.application.service import IService, IServiceCollection, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from app.pool_metrics import PoolMetricsResource

_log = Logger(namespace="hybrid.workers")

#: Seconds a worker waits for a peer's counters before listing it as ``null``.
PEER_TIMEOUT = 2.0

#: Latency figures merged by taking the largest: the pool's p99 is at most the largest p99 of
#: its workers, so this is an upper bound. Other numbers are counts and add up, ``mean`` is
#: weighted by ``count``, and ``peak_in_flight`` is the sum of the workers' peaks -- also an upper
#: bound, as they need not have peaked at the same moment.
MAXIMUM_FIELDS = frozenset({"p50", "p90", "p99", "max"})

#: Fields that name a worker rather than count anything: merged into the list of every value.
LISTED_FIELDS = frozenset({"pid"})


@dataclass(frozen=True)
class WorkerIdentity:
    """Which worker this process is, and where its pool's private sockets live."""

    id: int
    count: int
    rundir: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> WorkerIdentity | None:
        """The identity the supervisor gave this process, or None outside a pool."""
        if "HYBRID_WORKER_ID" not in environ:
            return None
        worker_id, count = int(environ["HYBRID_WORKER_ID"]), int(environ["HYBRID_WORKERS"])
        return cls(worker_id, count, Path(environ["HYBRID_WORKERS_DIR"]))

    def socket_path(self, worker_id: int) -> Path:
        return self.rundir / f"worker-{worker_id}.sock"


def join_pool(site: Site, parent: IServiceCollection, reactor: Any, metrics_path: str | None = None) -> None:
    """Make ``site`` one worker of the pool this process was started in, if any.

    ``metrics_path`` is where the site serves its metrics (``app.metrics_web``), if it does.
    """
    worker = WorkerIdentity.from_environ()
    if worker is None:
        return
    # Twisted only ever calls requestFactory, so a function is as good as a Request subclass.
    site.requestFactory = _tagging(site.requestFactory, str(worker.id).encode())  # type: ignore[assignment]
    services = MultiService()
    peer_service = share_stats(worker, site.resource, reactor, metrics_path)
    if peer_service is not None:
        services.addService(peer_service)
    services.addService(TimerService(1.0, _ParentWatch(reactor)))
    services.setServiceParent(parent)


def share_stats(
    worker: WorkerIdentity, root: IResource, reactor: Any, metrics_path: str | None = None
) -> IService | None:
    """Make the tree's ``/stats`` (and metrics at ``metrics_path``) answer for the pool; return
    the service that serves this worker's own to its peers (None when the tree has neither)."""
    private = Resource()  # what the other workers ask for on this worker's socket
    local_stats = root.children.get(b"stats") if isinstance(root, Resource) else None
    if local_stats is not None:
        assert isinstance(root, Resource)
        root.putChild(b"stats", PoolStatsResource(worker, local_stats, reactor))
        private.putChild(b"stats", local_stats)
    parent_node, name = _parent_of(root, metrics_path)
    local_metrics = parent_node.children.get(name) if parent_node is not None else None
    if parent_node is not None and local_metrics is not None:
        peers = [i for i in range(1, worker.count + 1) if i != worker.id]
        endpoints = _PeerEndpoints(worker, reactor)
        parent_node.putChild(name, PoolMetricsResource(worker.id, peers, local_metrics, endpoints, reactor))
        private.putChild(b"metrics", local_metrics)
    if not private.children:
        return None
    return _PeerStatsService(worker, _QuietSite(private), reactor)


def _parent_of(root: IResource, path: str | None) -> tuple[Resource | None, bytes]:
    """The resource holding the last segment of ``path`` in ``root``'s tree, and that segment."""
    if path is None or not isinstance(root, Resource):
        return None, b""
    *parents, name = (segment.encode() for segment in path.strip("/").split("/"))
    node: IResource | None = root
    for segment in parents:
        node = node.children.get(segment) if isinstance(node, Resource) else None
    return (node if isinstance(node, Resource) else None), name


def _tagging(factory: Callable[..., Request], worker_id: bytes) -> Callable[..., Request]:
    """A request factory whose requests carry ``X-Worker`` from the start (both sides keep it)."""

    def make(*args: Any, **kwargs: Any) -> Request:
        request = factory(*args, **kwargs)
        request.responseHeaders.setRawHeaders(b"x-worker", [worker_id])
        return request

    return make


class _ParentWatch:
    """Stops the reactor (a graceful stop, as on SIGTERM) once the supervisor is gone."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        # From the supervisor itself: one that died while this worker started up would leave
        # getppid() already pointing at init here, and the change would never be seen.
        self._parent = int(os.environ.get("HYBRID_SUPERVISOR_PID", os.getppid()))

    def __call__(self) -> None:
        if os.getppid() != self._parent and self._reactor.running:
            _log.warn("supervisor (pid {pid}) is gone: stopping", pid=self._parent)
            self._reactor.stop()


class _QuietSite(Site):
    """A site for the other workers only: no access log, no start and stop lines."""

    noisy = False

    def log(self, request: object) -> None:
        pass


class _PeerStatsService(Service):
    """Serves this worker's own ``/stats`` on its private socket, for the other workers."""

    def __init__(self, worker: WorkerIdentity, site: Site, reactor: Any) -> None:
        self._path = worker.socket_path(worker.id)
        self._site = site
        self._reactor = reactor
        self._port: Any = None

    def startService(self) -> None:
        super().startService()
        self._path.unlink(missing_ok=True)  # left by this worker's predecessor
        self._port = self._reactor.listenUNIX(os.fspath(self._path), self._site, mode=0o600)

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        port, self._port = self._port, None
        return port.stopListening() if port is not None else None


@implementer(IAgentEndpointFactory)
class _PeerEndpoints:
    """``http://worker-N/`` is worker N's private unix socket."""

    def __init__(self, worker: WorkerIdentity, reactor: Any) -> None:
        self._worker = worker
        self._reactor = reactor

    def endpointForURI(self, uri: Any) -> UNIXClientEndpoint:
        peer = int(uri.host.decode().removeprefix("worker-"))
        return UNIXClientEndpoint(self._reactor, os.fspath(self._worker.socket_path(peer)), timeout=PEER_TIMEOUT)


class PoolStatsResource(Resource):
    """``/stats`` for the pool: this worker's counters merged with every other worker's.

    ``local`` is the site's own stats resource; it answers for this worker, and the same
    method (``GET``, or ``POST`` to start a new peak window) is sent to every peer.
    """

    isLeaf = True

    def __init__(self, worker: WorkerIdentity, local: IResource, reactor: Any) -> None:
        super().__init__()
        self._worker = worker
        self._local = local
        self._reactor = reactor
        # Persistent: one connection per peer, kept for the next /stats.
        pool = HTTPConnectionPool(reactor, persistent=True)
        self._agent = Agent.usingEndpointFactory(reactor, _PeerEndpoints(worker, reactor), pool=pool)

    def render(self, request: Request) -> bytes | int:
        own = self._local.render(request)
        if request.code != 200 or not isinstance(own, bytes):
            return own  # an error (405 for a method /stats does not answer) is the same alone
        method = request.method
        peers = [i for i in range(1, self._worker.count + 1) if i != self._worker.id]
        asked = DeferredList([self._ask(peer, method) for peer in peers])
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))

        def answer(results: list[tuple[bool, Any]]) -> None:
            snapshots: dict[str, Any] = {str(self._worker.id): json.loads(own)}
            for peer, (_, snapshot) in zip(peers, results, strict=True):
                snapshots[str(peer)] = snapshot
            if not finished:
                request.write(json.dumps({**merge_snapshots(snapshots), "worker": self._worker.id}).encode())
                request.finish()

        asked.addCallback(answer)
        return NOT_DONE_YET

    def _ask(self, peer: int, method: bytes) -> Deferred[Any]:
        """The peer's own counters, or None if it does not answer (restarting, say)."""
        d = self._agent.request(method, f"http://worker-{peer}/stats".encode())
        d.addCallback(readBody)
        d.addCallback(json.loads)
        d.addTimeout(PEER_TIMEOUT, self._reactor)
        d.addErrback(
            lambda failure: _log.warn(
                "worker {peer} did not answer /stats: {e}", peer=peer, e=failure.getErrorMessage()
            )
        )
        return d


def merge_snapshots(snapshots: Mapping[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The pool's ``/stats``: each side's counters merged, plus ``workers``: id -> own counters.

    A worker that did not answer is listed as ``None`` and left out of the sums.
    """
    answered = [s for s in snapshots.values() if s is not None]
    sides = {name for s in answered for name in s}
    merged = {name: _merge([s[name] for s in answered if name in s]) for name in sorted(sides)}
    return {**merged, "workers": dict(snapshots)}


def _merge(values: list[Any]) -> Any:
    """Merge one field across workers (rules: ``MAXIMUM_FIELDS``, ``LISTED_FIELDS``)."""
    if values and all(isinstance(v, dict) for v in values):
        keys = dict.fromkeys(k for v in values for k in v)
        merged = {k: _merge([v[k] for v in values if k in v]) for k in keys}
        for k in MAXIMUM_FIELDS & keys.keys():
            numbers = [v[k] for v in values if isinstance(v.get(k), int | float)]
            merged[k] = max(numbers) if numbers else None
        for k in LISTED_FIELDS & keys.keys():
            merged[k] = [v[k] for v in values if k in v]
        if "mean" in keys and "count" in keys:
            weighted = [(v["mean"], v["count"]) for v in values if v.get("mean") is not None]
            total = sum(count for _, count in weighted)
            merged["mean"] = sum(m * c for m, c in weighted) / total if total else None
        return merged
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and len(numbers) == len(values):
        return sum(numbers)
    return next((v for v in values if v is not None), None)
