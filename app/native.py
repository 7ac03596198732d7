# -*- test-case-name: tests.app.test_native -*-
"""The native side: Twisted resources answering with ``NOT_DONE_YET``.

``DelayedResource`` is the resource of the Twisted Web tutorial "Asynchronous Responses"
(``render_GET`` schedules a delayed call and returns ``NOT_DONE_YET``; the call writes the body
and finishes the request) with the tutorial's follow-up, "Interrupted Responses": when the
client goes away, ``notifyFinish()`` errs back and the pending call is cancelled, so no work is
done for nobody. The other resources vary one thing each: the repeated-write model, and waiting
on asyncio instead of the reactor's clock.

Everything here runs on the reactor thread; the clock is injected so nothing imports the global
reactor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from app.stats import SideStats, Tracker
from app.tutorial import BODY, HTML, TEXT, WARMUP, DelayError, parse_delay, stream_parts


class _TutorialResource(Resource):
    """Validates ``?delay=``, counts the request in flight, and leaves the answer to a subclass."""

    isLeaf = True

    def __init__(self, clock: IReactorTime, stats: SideStats, default_delay: float) -> None:
        super().__init__()
        self._clock = clock
        self._stats = stats
        self._default_delay = default_delay

    def render(self, request: Request) -> bytes | int:
        """Any method but GET and HEAD gets the 405 with ``Allow`` the other sides send.

        Twisted's own answer to a method outside its ``supportedMethods`` is a 501 HTML page.
        """
        if request.method in (b"GET", b"HEAD"):
            result: bytes | int = super().render(request)
            return result
        request.setResponseCode(405)
        request.setHeader(b"allow", b"GET, HEAD")
        request.setHeader(b"content-type", TEXT.encode())
        return b"Method Not Allowed"

    def render_HEAD(self, request: Request) -> bytes | int:
        """Like GET, but seen as a HEAD (Twisted would otherwise hand ``render_GET`` a fake GET)."""
        return self.render_GET(request)

    def render_GET(self, request: Request) -> bytes | int:
        args: dict[bytes, list[bytes]] = request.args or {}
        values = [v.decode("utf-8", "replace") for v in args.get(b"delay", [])]
        try:
            delay = parse_delay(values, self._default_delay)
        except DelayError as e:
            request.setResponseCode(400)
            request.setHeader(b"content-type", TEXT.encode())
            return str(e).encode()
        self._respond_later(request, delay, self._stats.begin(counted=WARMUP.encode() not in args))
        return NOT_DONE_YET

    def _respond_later(self, request: Request, delay: float, tracker: Tracker) -> None:
        raise NotImplementedError


def _write_body(request: Request, body: bytes) -> None:
    """Write a whole HTML body and finish, with the headers the ASGI twin sends too."""
    request.setHeader(b"content-type", HTML.encode())
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)
    request.finish()


class DelayedResource(_TutorialResource):
    """The tutorial's resource: one delayed call, cancelled if the client leaves first."""

    def _respond_later(self, request: Request, delay: float, tracker: Tracker) -> None:
        call = self._clock.callLater(delay, self._delayed_render, request, tracker)
        request.notifyFinish().addErrback(self._response_failed, call, tracker)

    def _delayed_render(self, request: Request, tracker: Tracker) -> None:
        _write_body(request, BODY)
        tracker.complete()

    def _response_failed(self, reason: Failure, call: IDelayedCall, tracker: Tracker) -> None:
        call.cancel()
        tracker.abandon()


class StreamingResource(_TutorialResource):
    """The repeated-write model: an opening chunk at once, then one chunk per step of the delay.

    No Content-Length is set, so HTTP/1.1 clients get a chunked response and see each chunk as it
    is written. A HEAD ends with the headers, since they are all of the answer it will see.
    """

    def _respond_later(self, request: Request, delay: float, tracker: Tracker) -> None:
        opening, *steps = stream_parts()
        request.setHeader(b"content-type", HTML.encode())
        if request.method == b"HEAD":  # the headers are all it gets: nothing to wait for
            request.finish()
            tracker.complete()
            return
        request.write(opening)
        _ChunkWriter(self._clock, request, steps, delay / len(steps), tracker).start()


class _ChunkWriter:
    """Writes the remaining chunks of one streaming response, one delayed call at a time."""

    def __init__(
        self,
        clock: IReactorTime,
        request: Request,
        chunks: list[bytes],
        interval: float,
        tracker: Tracker,
    ) -> None:
        self._clock = clock
        self._request = request
        self._chunks = chunks
        self._interval = interval
        self._tracker = tracker
        self._pending: IDelayedCall | None = None

    def start(self) -> None:
        self._request.notifyFinish().addErrback(self._response_failed)
        self._schedule_next()

    def _schedule_next(self) -> None:
        self._pending = self._clock.callLater(self._interval, self._write_next)

    def _write_next(self) -> None:
        self._request.write(self._chunks.pop(0))
        if self._chunks:
            self._schedule_next()
        else:
            self._request.finish()
            self._tracker.complete()

    def _response_failed(self, reason: Failure) -> None:
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._tracker.abandon()


async def _late_body(delay: float) -> bytes:
    """Asyncio code the native side wants to reuse: it knows nothing of Twisted."""
    await asyncio.sleep(delay)
    return BODY


class AsyncioDelayedResource(_TutorialResource):
    """A native resource awaiting an asyncio coroutine, as code migrating to asyncio does.

    Works because the reactor is Twisted's asyncio reactor: the task runs on the very loop that
    calls ``render_GET``. Cancelling the Deferred cancels the asyncio task.
    """

    def _respond_later(self, request: Request, delay: float, tracker: Tracker) -> None:
        waiting = Deferred.fromFuture(asyncio.ensure_future(_late_body(delay)))
        waiting.addCallback(self._render, request, tracker)
        waiting.addErrback(_trap_cancelled)
        request.notifyFinish().addErrback(self._response_failed, waiting, tracker)

    def _render(self, body: bytes, request: Request, tracker: Tracker) -> None:
        _write_body(request, body)
        tracker.complete()

    def _response_failed(self, reason: Failure, waiting: Deferred[Any], tracker: Tracker) -> None:
        waiting.cancel()
        tracker.abandon()


def _trap_cancelled(reason: Failure) -> None:
    """The task was cancelled because its client left: expected, not an error to log."""
    reason.trap(asyncio.CancelledError, CancelledError)
