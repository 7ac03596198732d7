"""One app call from start to end, for HTTP and WebSocket alike.

An ``AppCall`` starts the app as an asyncio Task on the reactor's loop, holds
the two waits of its connection (``receive()`` parked until the I/O side has
news, ``send()`` held while the transport paused its producer), gives the app
``disconnect_grace`` seconds to notice a disconnect before cancelling it, and
turns "the task is done" into one ``Outcome`` for its host, which hands it to
its sans-IO cycle (as Hypercorn's task group ends every call with
``send(None)``).  Timers run on an injected ``IReactorTime``, so hosts are
tested in-process with ``twisted.internet.task.Clock``.

Everything here runs on the reactor's thread, which is the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from bridge._aio import start_task
from bridge._deadlines import Deadlines
from bridge._options import InFlight, Options
from bridge.errors import ClientDisconnected
from bridge.types import ASGIApp

_log = Logger(namespace="bridge.app")


@dataclass(frozen=True, slots=True)
class Runner:
    """What a host needs from its resource to run app calls: built once per resource."""

    app: ASGIApp
    options: Options
    in_flight: InFlight
    loop: asyncio.AbstractEventLoop
    clock: IReactorTime
    #: ``options.response_timeout`` for every call, on one timer; ``None`` without a timeout.
    response_deadlines: Deadlines | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the app's coroutine ended: returned, raised ``error``, or was cancelled."""

    error: BaseException | None = None
    cancelled: bool = False

    @property
    def returned(self) -> bool:
        return self.error is None and not self.cancelled


def _release(waiters: list[asyncio.Future[None]] | None) -> None:
    for future in waiters or ():
        if not future.done():  # a cancelled waiter's future is done already
            future.set_result(None)


def _forget(waiters: list[asyncio.Future[None]] | None, future: asyncio.Future[None]) -> None:
    if waiters is not None and future in waiters:
        waiters.remove(future)


async def _raise(error: Exception) -> None:
    raise error


class AppCall:
    """The task of one app call, its grace timer and its two waits.

    ``receive()`` parks in ``news()`` until the I/O side calls ``wake()`` (a
    body chunk, a message, a disconnect); ``send()`` parks in ``writable()``
    while the transport has paused its producer.  Any number of tasks may wait
    (apps call ``receive()`` from several): each gets its own future, so a
    cancelled waiter never cancels another, and callers re-check their state
    after waking.

    :param on_done: called once, on the loop, with the ``Outcome``, after any
        exception was logged.
    :param label: names the call in log lines (``"GET /x"``, ``"WebSocket /ws"``).
    :param quiet: says which exceptions the host expects and need no
        traceback in the log (besides ``ClientDisconnected`` once the
        connection is gone).
    """

    __slots__ = (
        "_clock",
        "_grace",
        "_grace_timer",
        "_label",
        "_loop",
        "_news_waiters",
        "_on_done",
        "_quiet",
        "_writable_waiters",
        "gone",
        "paused",
        "task",
    )

    def __init__(
        self,
        runner: Runner,
        on_done: Callable[[Outcome], None],
        label: Callable[[], str],
        quiet: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self._clock = runner.clock
        self._quiet = quiet
        self._grace = runner.options.disconnect_grace
        self._on_done = on_done
        self._label = label
        self._grace_timer: IDelayedCall | None = None
        self._loop = runner.loop
        self.task: asyncio.Future[None] | None = None
        self._news_waiters: list[asyncio.Future[None]] | None = None
        self._writable_waiters: list[asyncio.Future[None]] | None = None
        #: The transport paused its producer: ``send()`` waits.
        self.paused = False
        #: The connection is gone (or was answered by the server itself).
        self.gone = False

    def start(self, loop: asyncio.AbstractEventLoop, app: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``app(*args)`` as a Task; an app that fails before its first await (a wrong
        signature) fails inside the task too, so its host ends it like any other failure."""
        try:
            call = app(*args)
        except Exception as e:
            call = _raise(e)
        task = self.task = start_task(loop, call)
        task.add_done_callback(self._done)

    # -- the waits ------------------------------------------------------------

    async def news(self) -> None:
        """Return at the next ``wake()``."""
        future = self._loop.create_future()
        if self._news_waiters is None:
            self._news_waiters = [future]
        else:
            self._news_waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            # A cancelled receive() (a timeout around it, a polled is_disconnected()) must
            # not leave its future behind: an app may do it thousands of times per request.
            _forget(self._news_waiters, future)
            raise

    def wake(self) -> None:
        waiters, self._news_waiters = self._news_waiters, None
        _release(waiters)

    def pause(self) -> None:
        if not self.gone:
            self.paused = True

    def resume(self) -> None:
        self.paused = False
        waiters, self._writable_waiters = self._writable_waiters, None
        _release(waiters)

    async def writable(self) -> None:
        """Return once writing may go on: at once unless paused."""
        while self.paused:
            future = self._loop.create_future()
            if self._writable_waiters is None:
                self._writable_waiters = [future]
            else:
                self._writable_waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                _forget(self._writable_waiters, future)
                raise

    # -- endings --------------------------------------------------------------

    def connection_gone(self) -> None:
        """Wake every wait, then cancel the app if it is still running after the grace period."""
        if self.gone:
            return
        self.gone = True
        self.wake()
        self.resume()
        task = self.task
        if task is not None and not task.done() and self._grace_timer is None:
            self._grace_timer = self._clock.callLater(self._grace, self.cancel)

    def cancel(self) -> None:
        self._grace_timer = None
        if self.task is not None:
            self.task.cancel()

    def _expected(self, error: BaseException, quiet: Callable[[BaseException], bool] | None) -> bool:
        if isinstance(error, ClientDisconnected) and self.gone:
            return True
        return quiet is not None and quiet(error)

    def _done(self, task: asyncio.Future[None]) -> None:
        on_done, label, quiet = self._on_done, self._label, self._quiet
        # The host holds this call and the call holds the host's methods: a cycle. Dropped
        # here, so a finished request's objects go when the last reference does, rather than
        # waiting for the garbage collector, which would walk every held request to find them.
        del self._on_done, self._label, self._quiet
        if self._grace_timer is not None:
            if self._grace_timer.active():
                self._grace_timer.cancel()
            self._grace_timer = None
        if task.cancelled():
            outcome = Outcome(cancelled=True)
        else:
            error = task.exception()
            if error is not None and not self._expected(error, quiet):
                _log.failure(
                    "Exception in ASGI application for {call}",
                    failure=Failure(error, type(error), error.__traceback__),
                    call=label(),
                )
            outcome = Outcome(error)
        on_done(outcome)


async def yield_to_loop() -> None:
    """Let the loop turn once: ``receive()`` answering from state must not let an app spin."""
    await asyncio.sleep(0)


__all__ = ["AppCall", "Outcome", "Runner", "yield_to_loop"]
