"""The asyncio side: the tutorial's endpoints as a Starlette app.

Mounted at ``/asgi`` through ``bridge.ASGIResource`` it runs on the reactor's own asyncio loop,
beside the native resources; served by any other ASGI server it behaves the same. Bodies, status
codes and headers match the native side (``app.native``) byte for byte, which a test checks.

The counters reach the endpoints through the lifespan state (``request.state.stats``), the ASGI
way to hand per-server objects to requests; a server that skipped lifespan startup fails loudly
instead of serving uncounted requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from app.stats import SideStats
from app.tutorial import BODY, HTML, STREAM_STEPS, TEXT, WARMUP, DelayError, parse_delay, stream_parts

Wait = Callable[[], Awaitable[None]]


def create_app(
    stats: SideStats, clock: IReactorTime, default_delay: float, extra_routes: Sequence[BaseRoute] = ()
) -> Starlette:
    """The Starlette app served at ``/asgi``.

    ``clock`` is the Twisted reactor the ``/await-twisted`` endpoint schedules on; it must run on
    the same asyncio loop as the app (Twisted's asyncio reactor). ``extra_routes`` come after the
    tutorial's (``app.site`` adds the ``/live`` counters feed of ``app.live``).
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        yield {"stats": stats}

    endpoints = _Endpoints(clock, default_delay)
    routes: list[BaseRoute] = [
        Route("/delayed", endpoints.delayed),
        Route("/stream", endpoints.stream),
        Route("/await-twisted", endpoints.await_twisted),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _Endpoints:
    """The endpoints, sharing the server-wide default delay and the Twisted clock."""

    def __init__(self, clock: IReactorTime, default_delay: float) -> None:
        self._clock = clock
        self._default_delay = default_delay

    async def delayed(self, request: Request) -> Response:
        """The tutorial's delayed response, waiting with ``anyio.sleep``."""
        try:
            delay = parse_delay(request.query_params.getlist("delay"), self._default_delay)
        except DelayError as e:
            return _bad_request(e)
        return _UnlessAbandoned(request.state.stats, lambda: anyio.sleep(delay), _html(BODY))

    async def stream(self, request: Request) -> Response:
        """The repeated-write variant: an opening chunk at once, then one per step of the delay."""
        try:
            delay = parse_delay(request.query_params.getlist("delay"), self._default_delay)
        except DelayError as e:
            return _bad_request(e)
        # A HEAD gets the headers only, so it ends with them rather than streaming nothing for the delay.
        body = _no_chunks() if request.method == "HEAD" else _chunks(delay / STREAM_STEPS)
        chunks = StreamingResponse(body, media_type=HTML)
        return _UnlessAbandoned(request.state.stats, _no_wait, chunks)

    async def await_twisted(self, request: Request) -> Response:
        """Awaits a Twisted Deferred (``deferLater`` on the reactor) from a coroutine.

        ``Deferred.asFuture`` turns it into an asyncio future on the running loop; cancelling the
        future (the client left) cancels the Deferred, which cancels the reactor's delayed call.
        """
        try:
            delay = parse_delay(request.query_params.getlist("delay"), self._default_delay)
        except DelayError as e:
            return _bad_request(e)

        async def wait() -> None:
            await deferLater(self._clock, delay).asFuture(asyncio.get_running_loop())

        return _UnlessAbandoned(request.state.stats, wait, _html(BODY))


def _html(body: bytes) -> Response:
    return Response(body, media_type=HTML)


def _bad_request(error: DelayError) -> Response:
    return Response(str(error), status_code=400, media_type=TEXT)


async def _no_wait() -> None:
    """Nothing to wait for before the response: a streaming response waits while it streams."""


async def _chunks(interval: float) -> AsyncIterator[bytes]:
    opening, *steps = stream_parts()
    yield opening
    for chunk in steps:
        await anyio.sleep(interval)
        yield chunk


async def _no_chunks() -> AsyncIterator[bytes]:
    return
    yield


async def _receive_nothing() -> Message:
    """The ``receive`` handed to the wrapped response: ``_UnlessAbandoned`` owns the real one."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable: sleep_forever only returns by cancellation")


class _UnlessAbandoned(Response):
    """Waits, then sends a response, both cancelled as soon as the client disconnects.

    Under ASGI 2.4 a server only tells an app that its client left when the app calls
    ``receive()`` (or when a ``send()`` fails), and a sleeping endpoint does neither, so the wait
    would run to its end for nobody. Racing the work against ``receive()`` in a task group is the
    asyncio counterpart of the native side's ``notifyFinish().addErrback(...)``, and counts the
    request in the side's stats either way.
    """

    def __init__(self, stats: SideStats, wait: Wait, response: Response) -> None:
        self._stats = stats
        self._wait = wait
        self._response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        tracker = self._stats.begin(counted=WARMUP not in query)
        finishing = False
        completed = False

        async def send_final_aware(message: Message) -> None:
            # Once the last body message is on its way the response is delivered: the
            # http.disconnect that follows it (ASGI: receive() after the response is complete)
            # is the normal end of the request, not a client leaving.
            nonlocal finishing
            finishing = message["type"] == "http.response.body" and not message.get("more_body")
            await send(message)

        async def watch_disconnect(cancel_scope: anyio.CancelScope) -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finishing:
                cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch_disconnect, tasks.cancel_scope)
                # ASGI 2.4: a send after the client left raises OSError (which Starlette's
                # StreamingResponse turns into ClientDisconnect).
                with contextlib.suppress(OSError, ClientDisconnect):
                    await self._wait()
                    await self._response(scope, _receive_nothing, send_final_aware)
                    completed = True
                tasks.cancel_scope.cancel()
        finally:  # also when the server cancels the task before the disconnect is seen here
            if completed:
                tracker.complete()
            else:
                tracker.abandon()
