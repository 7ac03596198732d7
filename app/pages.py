# -*- test-case-name: tests.app.test_site -*-
"""The site's own pages: the index (with the live comparison panel), ``/stats`` and ``/healthz``."""

from __future__ import annotations

import html
import json
from pathlib import Path

from twisted.web.resource import Resource
from twisted.web.server import Request

from app.sides import SIDES
from app.stats import Stats
from app.tutorial import DEFAULT_DELAY, HTML, MAX_DELAY, TEXT

#: The index page's script and style sheet (the live comparison panel), served at ``/static``.
STATIC = Path(__file__).parent / "static"

#: What the dashboard calls each side, from the one list of sides.
_SIDE_LABELS = html.escape(json.dumps({side.name: side.label for side in SIDES.values()}))

_INDEX = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hybrid: Twisted and asyncio on one loop</title>
<link rel="stylesheet" href="static/dashboard.css">
<script src="static/dashboard.js" defer></script>
</head>
<body>
<h1>One process, one event loop, three concurrency models</h1>
<p>Every side serves the Twisted Web tutorial's delayed response: the request waits
<code>delay</code> seconds (default {DEFAULT_DELAY:g}; add <code>?delay=0.5</code>, at most
{MAX_DELAY:g}), then gets <em>Sorry to keep you waiting.</em> While one request waits, the others
are served: nothing blocks the loop. A client that leaves early cancels the pending work.</p>
<section id="compare" class="compare" data-sides="{_SIDE_LABELS}" data-live="asgi/live">
<h2>Side by side, live</h2>
<p>Send <em>N</em> requests to every side at once and watch each one as a bar, from send to
response, beside the server's own counters. <em>Abandon half</em> aborts every other request
halfway through its delay: the abandoned counters show that each side cancelled the work.
In a terminal: <code>hybrid compare</code>.</p>
<form>
<label>requests per side <input name="n" type="number" min="1" max="100" value="20"></label>
<label>delay (seconds) <input name="delay" type="number" min="0.1" max="10" step="0.1" value="1"></label>
<button type="submit" value="run">Run</button>
<button type="submit" value="abandon">Run, abandon half</button>
</form>
<p class="status" role="status"></p>
<div class="counters"></div>
<svg class="timeline" role="img" aria-label="request timeline, one bar per request"></svg>
<noscript><p>The live comparison needs JavaScript.</p></noscript>
</section>
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
