# -*- test-case-name: tests.app.test_metrics -*-
"""``/metrics`` for a ``--workers N`` pool: every worker's series, each labelled with its ``worker``.

A scrape lands on one worker, chosen by the kernel. That worker renders its own exposition and
asks every other worker for theirs on its private unix socket (as ``/stats`` does, see
``app.worker``), reads each with the library's parser, adds ``worker="N"`` to every sample and
serves them all as one exposition. Prometheus then has the whole pool (``sum without (worker)``)
and each worker, and a restarted worker's counters start again as a counter reset, which
Prometheus handles. A worker that does not answer in time is left out, with a log line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.iweb import IAgentEndpointFactory
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

_log = Logger(namespace="hybrid.workers")


class PoolMetricsResource(Resource):
    """The pool's exposition: ``local`` (this worker's page) and every peer's, labelled by worker."""

    isLeaf = True

    def __init__(
        self, worker_id: int, peers: Iterable[int], local: IResource, endpoints: IAgentEndpointFactory, reactor: Any
    ) -> None:
        super().__init__()
        self._worker_id = worker_id
        self._peers = list(peers)
        self._local = local
        self._reactor = reactor
        self._agent = Agent.usingEndpointFactory(reactor, endpoints, pool=HTTPConnectionPool(reactor, persistent=True))

    def render_GET(self, request: Request) -> bytes | int:
        own = self._local.render(request)
        assert isinstance(own, bytes)  # the local page renders at once
        asked = DeferredList([self._ask(peer) for peer in self._peers])
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))

        def answer(results: list[tuple[bool, Any]]) -> None:
            texts = {self._worker_id: own.decode()}
            texts.update({peer: text for peer, (_, text) in zip(self._peers, results, strict=True) if text is not None})
            if not finished:
                request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
                request.write(labelled_by_worker(texts))
                request.finish()

        asked.addCallback(answer)
        return NOT_DONE_YET

    def _ask(self, peer: int) -> Deferred[Any]:
        d = self._agent.request(b"GET", f"http://worker-{peer}/metrics".encode())
        d.addCallback(readBody)
        d.addCallback(bytes.decode)
        d.addTimeout(2.0, self._reactor)

        def left_out(failure: Any) -> None:
            _log.warn("worker {peer} did not answer /metrics: {e}", peer=peer, e=failure.getErrorMessage())

        d.addErrback(left_out)
        return d


def labelled_by_worker(texts: dict[int, str]) -> bytes:
    """One exposition of several, each sample with its worker's id as the label ``worker``."""
    families: dict[str, Metric] = {}
    for worker, text in sorted(texts.items()):
        for family in text_string_to_metric_families(text):
            merged = families.setdefault(family.name, _empty_like(family))
            merged.samples.extend(s._replace(labels={**s.labels, "worker": str(worker)}) for s in family.samples)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families.values()))
    return generate_latest(registry)


def _empty_like(family: Metric) -> Metric:
    return Metric(family.name, family.documentation, family.type, family.unit)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
