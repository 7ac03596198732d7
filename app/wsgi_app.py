# -*- test-case-name: tests.app.test_wsgi -*-
"""The thread side: the tutorial's endpoints as a WSGI application, on Twisted's thread pool.

Mounted at ``/wsgi`` through Twisted's own ``twisted.web.wsgi.WSGIResource``, every request runs
in a thread of the reactor's pool: ``/delayed`` blocks its thread in ``time.sleep`` and then
answers, ``/stream`` yields a chunk between sleeps. Bodies, status codes and headers are the
other sides' (``app.tutorial`` makes them), so a comparison measures the threads, nothing else.

What threads cannot do, shown rather than hidden:

- A sleeping thread cannot be interrupted. When the client leaves, its request stays in flight
  until the sleep ends; only then does ``WSGIResource`` (whose ``notifyFinish`` hook has marked
  the request finished) drop the write, stop iterating and ``close()`` the response, and the
  request is counted abandoned. The streaming variant stops the same way, at its next chunk.
- At most pool-size requests run at once; the others wait in the pool's queue for a thread,
  and a request whose client left while it waited still runs its whole delay.

The counters are not thread-safe (the other sides only touch them on the reactor thread), so the
worker threads marshal every update to the reactor: ``begin`` with ``blockingCallFromThread``
(the request is counted in flight before its thread sleeps) and the outcome with
``callFromThread``. No lock, and ``/stats`` reads consistent numbers.

Deciding the outcome needs one fact only Twisted has: whether a client that left had received the
whole response. ``WSGIResource`` finishes a request in a later reactor turn than its last write,
so a client may close its connection after the last byte of a Content-Length response and before
``finish()``; it got everything. ``wsgi_side`` therefore adds the Twisted request to each environ
(a server extension, ``REQUEST_KEY``), which the app reads on the reactor thread only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from twisted.internet.interfaces import IReactorFromThreads, IReactorThreads
from twisted.internet.threads import blockingCallFromThread
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from twisted.web.wsgi import WSGIResource

from app.stats import SideStats, Tracker
from app.tutorial import BODY, HTML, TEXT, WARMUP, DelayError, parse_delay, stream_parts

#: An endpoint answers after validation: it calls ``start_response`` and yields the body.
Endpoint = Callable[[float, StartResponse], Iterator[bytes]]

#: The environ key holding the ``twisted.web`` request a call serves (set by ``wsgi_side``).
REQUEST_KEY = "hybrid.twisted_request"


def wsgi_side(reactor: IReactorThreads, stats: SideStats, default_delay: float) -> IResource:
    """The ``/wsgi`` side: ``TutorialWSGIApp`` in Twisted's ``WSGIResource``, on the reactor's pool."""
    return _PassRequest(reactor, TutorialWSGIApp(stats, reactor, default_delay))


class _PassRequest(Resource):
    """Serves a WSGI app through ``WSGIResource``, with the Twisted request in its environ.

    ``WSGIResource`` builds the environ itself, so each request gets its own small wrapper of the
    app (and its own ``WSGIResource``: three attributes, nothing else).
    """

    isLeaf = True

    def __init__(self, reactor: IReactorThreads, app: TutorialWSGIApp) -> None:
        super().__init__()
        self._reactor = reactor
        self._app = app

    def render(self, request: Request) -> int:
        def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            environ[REQUEST_KEY] = request
            return self._app(environ, start_response)

        done: int = WSGIResource(self._reactor, self._reactor.getThreadPool(), application).render(request)
        return done  # NOT_DONE_YET: the app's thread finishes the request


def _delayed(delay: float, start_response: StartResponse) -> Iterator[bytes]:
    """The tutorial's delayed response: the thread sleeps, then answers."""
    time.sleep(delay)
    start_response("200 OK", [("Content-Type", HTML), ("Content-Length", str(len(BODY)))])
    yield BODY


def _stream(delay: float, start_response: StartResponse) -> Iterator[bytes]:
    """The repeated-write variant: an opening chunk at once, then one per step of the delay.

    No Content-Length, so Twisted sends it chunked and each chunk leaves as it is yielded.
    """
    start_response("200 OK", [("Content-Type", HTML)])
    opening, *steps = stream_parts()
    yield opening
    for chunk in steps:
        time.sleep(delay / len(steps))
        yield chunk


def _stream_head(delay: float, start_response: StartResponse) -> Iterator[bytes]:
    """HEAD of the streaming variant: its headers, at once; the chunks would not be sent anyway."""
    start_response("200 OK", [("Content-Type", HTML)])
    yield from ()


class TutorialWSGIApp:
    """The WSGI application served at ``/wsgi``: ``/delayed`` and ``/stream``.

    Runs in worker threads only (it waits for the reactor thread to count each request), served
    by ``wsgi_side``, which puts the Twisted request in the environ.
    """

    def __init__(self, stats: SideStats, reactor: IReactorFromThreads, default_delay: float) -> None:
        self._stats = stats
        self._reactor = reactor
        self._default_delay = default_delay
        self._endpoints: dict[str, Endpoint] = {"/delayed": _delayed, "/stream": _stream}
        self._head_endpoints: dict[str, Endpoint] = {"/stream": _stream_head}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        endpoint = self._endpoints.get(environ.get("PATH_INFO", ""))
        if endpoint is None:
            return _plain(start_response, "404 Not Found", "Not Found")
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return _plain(start_response, "405 Method Not Allowed", "Method Not Allowed", [("Allow", "GET, HEAD")])
        if environ["REQUEST_METHOD"] == "HEAD":
            endpoint = self._head_endpoints.get(environ["PATH_INFO"], endpoint)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            delay = parse_delay(query.get("delay", []), self._default_delay)
        except DelayError as e:
            return _plain(start_response, "400 Bad Request", str(e))
        return self._counted(environ[REQUEST_KEY], endpoint(delay, start_response), WARMUP not in query)

    def _counted(self, request: Request, body: Iterator[bytes], counted: bool = True) -> Iterator[bytes]:
        """Count the response in flight until its thread is done with it, then settle the outcome.

        ``WSGIResource`` closes the body early when the client has gone: after each chunk it
        checks whether the request is finished, and stops iterating.
        """
        tracker = blockingCallFromThread(self._reactor, self._stats.begin, counted)
        exhausted = False
        try:
            yield from body
            exhausted = True
        finally:
            self._reactor.callFromThread(_settle, tracker, request, exhausted)


def _settle(tracker: Tracker, request: Request, exhausted: bool) -> None:
    """On the reactor thread: completed, or abandoned?

    Exhausted: ``WSGIResource`` asked for more after the last chunk, so the client was there when
    it was written. Closed early: the client had gone by the last chunk, but may have received
    all of a Content-Length response (or the headers, all a HEAD gets) before leaving.
    """
    if exhausted or _delivered(request):
        tracker.complete()
    else:
        tracker.abandon()


def _delivered(request: Request) -> bool:
    """Whether Twisted wrote the whole response before the client left (writes after are dropped)."""
    length = request.responseHeaders.getRawHeaders(b"content-length")
    if not request.startedWriting or length is None:
        return False
    return request.method == b"HEAD" or request.sentLength == int(length[0])


def _plain(
    start_response: StartResponse, status: str, text: str, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", TEXT), ("Content-Length", str(len(body))), *headers])
    return [body]
