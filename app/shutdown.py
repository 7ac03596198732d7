# -*- test-case-name: tests.hardening.test_faults -*-
"""Graceful shutdown: the listeners close at once, requests in flight finish up to a deadline.

::

    LifespanService(s)          lifespan.shutdown once their children have stopped
      Draining                  stops its children, then waits for the requests in flight
        Listeners               the listening ports, closed first

On SIGTERM or SIGINT the reactor runs its "before shutdown" triggers, which stop the service
tree: ``Draining`` stops the listeners at once (new connections are refused), waits until
neither the site nor any ASGI mount has a request in flight, or the drain deadline passes, and
only then lets the lifespan services send ``lifespan.shutdown``. The process then exits 0.

Twisted's own handler would answer a second signal with a second ``reactor.stop()``, which
raises. ``ExitOnSecondSignal`` replaces it while stopping: a second SIGTERM or SIGINT ends the
process at once with status 128 + the signal's number (143 for SIGTERM, 130 for SIGINT, what a
shell reports for a process killed by that signal), skipping the drain, the lifespan shutdown
and the join of the thread pool.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from bridge import StreamingSite

_log = Logger(namespace="hybrid")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Draining(MultiService):
    """Stops its children (the listeners), then drains: waits for ``site`` and ``waits`` to be idle.

    :param waits: more Deferred-returning callables to wait for, e.g. each ``ASGIResource``'s
        ``wait_idle`` (app calls that outlive their response) and ``websockets.close_all``.
    """

    def __init__(
        self,
        clock: IReactorTime,
        site: StreamingSite,
        waits: Sequence[Callable[[], Deferred[Any]]],
        timeout: float,
    ) -> None:
        super().__init__()
        self._clock = clock
        self._site = site
        self._waits = waits
        self._timeout = timeout

    def stopService(self) -> Deferred[Any]:
        # Hold the site open like one more port, or closing the last listener would stop it
        # (Factory.doStop), and the requests still draining would lose their access-log lines.
        holding = bool(self._site.numPorts)
        if holding:
            self._site.doStart()
        stopped: Deferred[Any] = super().stopService()
        stopped.addCallback(lambda _: self._drain())
        if holding:
            stopped.addBoth(lambda result: (self._site.doStop(), result)[1])
        return stopped

    def _drain(self) -> Deferred[Any]:
        _log.info(
            "Stopped listening; draining {n} requests in flight (deadline {t:g} s)",
            n=self._site.in_flight,
            t=self._timeout,
        )
        idle = DeferredList([self._site.wait_idle(), *(wait() for wait in self._waits)], consumeErrors=True)
        deadline = self._clock.callLater(self._timeout, idle.cancel)
        return idle.addCallback(self._drained, deadline)

    def _drained(self, _: object, deadline: IDelayedCall) -> None:
        if deadline.active():
            deadline.cancel()
            _log.info("Drained: no request in flight")
        else:
            _log.warn(
                "Drain deadline ({t:g} s) passed with {n} requests in flight; they are cut off",
                t=self._timeout,
                n=self._site.in_flight,
            )


class ExitOnSecondSignal(Service):
    """While stopping, a second SIGTERM or SIGINT exits the process at once (status 128 + signal)."""

    def __init__(self, in_flight: Callable[[], int]) -> None:
        self._in_flight = in_flight

    def stopService(self) -> None:
        super().stopService()
        for number in STOP_SIGNALS:
            signal.signal(number, self._exit_now)

    def _exit_now(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        _log.warn(
            "Second {signal} while stopping: exiting now (status {status}) with {n} requests in flight",
            signal=name,
            status=128 + number,
            n=self._in_flight(),
        )
        sys.stdout.flush()
        os._exit(128 + number)
