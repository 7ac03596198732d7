"""``LifespanService``: ASGI lifespan bound to a Twisted service's life.

It is a ``MultiService`` whose children (typically the listening endpoint
services) start only after the app's ``lifespan.startup.complete``, and stop
-- followed by a bounded drain of in-flight requests -- before
``lifespan.shutdown`` is sent.  That is the ordering lifespan.rst asks for:
no connection before startup completes, no shutdown before connections end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge._aio import as_deferred, spawn
from bridge._lifespan import Lifespan
from bridge.errors import LifespanFailure
from bridge.resource import as_asgi3

_log = Logger(namespace="bridge.lifespan")


class LifespanService(MultiService):
    """Run ``app``'s lifespan around the child services.

    :ivar state: the lifespan state namespace; give it to
        ``ASGIResource(app, state=service.state)``.
    :ivar failure: why startup failed, or None.  On failure the reactor is
        stopped; the caller should exit non-zero when this is set.
    """

    def __init__(
        self,
        app: Any,
        *,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 30.0,
        drain_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.state: dict[str, Any] = {}
        self.failure: str | None = None
        self.drain_timeout = drain_timeout
        self._lifespan = Lifespan(
            as_asgi3(app), self.state, startup_timeout=startup_timeout, shutdown_timeout=shutdown_timeout
        )
        self._drains: list[Callable[[], Deferred[None]]] = []
        self.started: Deferred[None] = Deferred()

    def add_drain(self, wait_idle: Callable[[], Deferred[None]]) -> None:
        """Wait for ``wait_idle()`` (e.g. ``ASGIResource.wait_idle``) on stop."""
        self._drains.append(wait_idle)

    def privilegedStartService(self) -> None:
        # Endpoint services listen in privilegedStartService; that too must
        # wait for startup, so children get no privileged phase.
        Service.privilegedStartService(self)

    def startService(self) -> None:
        Service.startService(self)  # children wait for the app's startup
        d = as_deferred(spawn(self._lifespan.startup()))
        d.addCallbacks(self._startChildren, self._startupFailed)

    def _startChildren(self, _: object) -> None:
        if not self.running:
            return
        for child in self:
            child.startService()
        self.started.callback(None)

    def _startupFailed(self, failure: Failure) -> None:
        from twisted.internet import reactor

        self.failure = str(failure.value) if failure.check(LifespanFailure) else repr(failure.value)
        _log.critical("Not serving: {reason}", reason=self.failure)
        self.started.errback(failure)
        self.started.addErrback(lambda _: None)
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        # Children that never started (startup failed) have nothing to stop.
        stopping = [maybeDeferred(child.stopService) for child in reversed(list(self)) if child.running]
        d: Deferred[Any] = DeferredList(stopping)
        d.addCallback(lambda _: self._drain())
        d.addCallback(lambda _: as_deferred(spawn(self._lifespan.shutdown())))
        d.addErrback(lambda f: _log.error("{reason}", reason=str(f.value)))
        return d

    def _drain(self) -> Deferred[Any]:
        if not self._drains:
            return succeed(None)
        from twisted.internet import reactor

        waits: Deferred[Any] = DeferredList([wait() for wait in self._drains], consumeErrors=True)
        return waits.addTimeout(self.drain_timeout, reactor).addErrback(self._drainTimedOut)

    def _drainTimedOut(self, failure: Failure) -> None:
        _log.warn("Drain deadline ({t} s) passed with requests in flight", t=self.drain_timeout)


__all__ = ["LifespanService"]
