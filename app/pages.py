# -*- test-case-name: tests.app.test_site -*-
"""The site's own pages: the index, ``/stats`` and ``/healthz`` (native resources)."""

from __future__ import annotations

import json

from twisted.web.resource import Resource
from twisted.web.server import Request

from app.stats import Stats
from app.tutorial import DEFAULT_DELAY, HTML, MAX_DELAY, TEXT

_INDEX = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hybrid: Twisted and asyncio on one loop</title>
</head>
<body>
<h1>One process, one event loop, three concurrency models</h1>
<p>Both sides serve the Twisted Web tutorial's delayed response: the request waits
<code>delay</code> seconds (default {DEFAULT_DELAY:g}; add <code>?delay=0.5</code>, at most
{MAX_DELAY:g}), then gets <em>Sorry to keep you waiting.</em> While one request waits, the others
are served: nothing blocks the loop. A client that leaves early cancels the pending work.</p>
<table>
<tr><th></th><th>Twisted (callbacks)</th><th>asyncio (coroutines)</th><th>WSGI (threads)</th></tr>
<tr><th>How</th>
<td>a <code>Resource</code> returns <code>NOT_DONE_YET</code>; <code>reactor.callLater</code>
writes and finishes the request</td>
<td>a Starlette endpoint does <code>await anyio.sleep(delay)</code>, served through
<code>bridge.ASGIResource</code></td>
<td>a plain WSGI app does <code>time.sleep(delay)</code> in a thread of the reactor's pool,
served through Twisted's <code>WSGIResource</code></td></tr>
<tr><th>Delayed</th>
<td><a href="twisted/delayed?delay=1">twisted/delayed?delay=1</a></td>
<td><a href="asgi/delayed?delay=1">asgi/delayed?delay=1</a></td>
<td><a href="wsgi/delayed?delay=1">wsgi/delayed?delay=1</a></td></tr>
<tr><th>Streaming</th>
<td><a href="twisted/stream?delay=3">twisted/stream?delay=3</a></td>
<td><a href="asgi/stream?delay=3">asgi/stream?delay=3</a></td>
<td><a href="wsgi/stream?delay=3">wsgi/stream?delay=3</a></td></tr>
<tr><th>Across the boundary</th>
<td><a href="twisted/await-asyncio?delay=1">twisted/await-asyncio?delay=1</a>
awaits an asyncio coroutine</td>
<td><a href="asgi/await-twisted?delay=1">asgi/await-twisted?delay=1</a>
awaits a Twisted Deferred</td>
<td>(a thread reaches the loop only through <code>callFromThread</code>)</td></tr>
</table>
<p>Threads are the exception: at most <code>--wsgi-threads</code> WSGI requests (default 10) wait
at once while the others queue for a thread, and a sleeping thread cannot be cancelled when its
client leaves; it is counted abandoned when it wakes up.</p>
<p><a href="stats">stats</a>: requests in flight, peak in flight, completed, abandoned and
latency per side. <a href="healthz">healthz</a>: liveness.</p>
</body>
</html>
"""


class IndexResource(Resource):
    """``/``: what the two sides are, with a link to every endpoint."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", HTML.encode())
        return _INDEX.encode()


class StatsResource(Resource):
    """``/stats``: every side's counters as one JSON object.

    ``POST /stats`` starts a new peak-in-flight window and answers the counters, so that a
    comparison run (``hybrid compare``, the dashboard) reports the peak of its own requests.
    """

    isLeaf = True

    def __init__(self, stats: Stats) -> None:
        super().__init__()
        self._stats = stats

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(self._stats.snapshot()).encode()

    def render_POST(self, request: Request) -> bytes:
        self._stats.reset_peaks()
        return self.render_GET(request)


class HealthResource(Resource):
    """``/healthz``: answers ``ok`` while the loop is serving requests."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", TEXT.encode())
        return b"ok"
