# -*- test-case-name: tests.app.test_wsgi -*-
"""Stopping with WSGI requests in flight: wait for the reactor's thread pool before it is joined.

At shutdown the reactor joins its pool threads ("during shutdown"), blocking its own thread. A
WSGI request still running at that moment hands its response to the reactor thread and waits
for it (``WSGIResource`` writes with ``blockingCallFromThread``), which never comes: the process
hangs (the same hang as evennia/evennia#1128). ``DrainThreadPool`` waits in "before shutdown",
while the reactor still runs, until the pool has no work left. A thread cannot be interrupted,
so a stop waits for the longest running request (for the ``/wsgi`` side, at most ``MAX_DELAY``).
"""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.threadpool import ThreadPool


class DrainThreadPool(Service):
    """A service whose stop fires once ``pool`` (the reactor's) has no work running or queued."""

    #: How often to look, in seconds, while stopping.
    interval = 0.05

    def __init__(self, clock: IReactorTime, pool: ThreadPool) -> None:
        self._clock = clock
        self._pool = pool

    def stopService(self) -> Deferred[None]:
        super().stopService()

        def stop_when_idle() -> None:
            if not self._pool.working and not self._pool.q.qsize():
                watch.stop()

        watch = LoopingCall(stop_when_idle)
        watch.clock = self._clock
        return watch.start(self.interval).addCallback(lambda _: None)
