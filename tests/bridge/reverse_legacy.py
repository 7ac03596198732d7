"""A legacy Twisted resource tree, written as for a native Site, served by the reverse tests.

Like the Twisted Web tutorials, it imports the global reactor at import time; the test apps
(``reverse_app.py``) hand ``TwistedResourceApp`` a function that imports this module once the
reactor runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall, IPushProducer
from twisted.protocols.basic import FileSender
from twisted.web import static, util
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface import implementer

BODY = b"<html><body>Sorry to keep you waiting.</body></html>"


class Counters:
    """What the tutorial resource did, for ``/stats``."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.peak = 0
        self.completed = 0
        self.cancelled = 0


class DelayedResource(Resource):
    """The tutorial's "Asynchronous Responses" resource, with its "interrupted" follow-up."""

    isLeaf = True

    def __init__(self, counters: Counters) -> None:
        super().__init__()
        self.counters = counters

    def _delayedRender(self, request: Any) -> None:
        self.counters.in_flight -= 1
        self.counters.completed += 1
        request.write(BODY)
        request.finish()

    def _responseFailed(self, _: Any, call: IDelayedCall) -> None:
        self.counters.in_flight -= 1
        self.counters.cancelled += 1
        call.cancel()

    def render_GET(self, request: Any) -> Any:
        delay = float(request.args.get(b"delay", [b"5"])[0])
        call = reactor.callLater(delay, self._delayedRender, request)
        request.notifyFinish().addErrback(self._responseFailed, call)
        self.counters.in_flight += 1
        self.counters.peak = max(self.counters.peak, self.counters.in_flight)
        return NOT_DONE_YET


class StatsResource(Resource):
    """Counters, plus the tutorial's delayed calls that the reactor still has pending."""

    isLeaf = True

    def __init__(self, counters: Counters) -> None:
        super().__init__()
        self.counters = counters

    def render_GET(self, request: Any) -> bytes:
        pending = [
            call
            for call in reactor.getDelayedCalls()
            if getattr(getattr(call, "func", None), "__func__", None) is DelayedResource._delayedRender
        ]
        stats = dict(vars(self.counters), pending_delayed_calls=len(pending))
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(stats).encode()


class BodyResource(Resource):
    """Describes ``request.content``: where Twisted put the body, and what it holds."""

    isLeaf = True

    def render_POST(self, request: Any) -> bytes:
        content = request.content.read()
        request.setHeader(b"content-type", b"application/json")
        described = {
            "length": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "spooled_to_file": not hasattr(request.content, "getvalue"),
            "args": {k.decode(): [v.decode() for v in vs] for k, vs in request.args.items()},
        }
        return json.dumps(described).encode()


class InfoResource(Resource):
    """What the Request looks like to a resource."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        client, host = request.getClientAddress(), request.getHost()
        request.setHeader(b"content-type", b"application/json")
        info = {
            "method": request.method.decode(),
            "uri": request.uri.decode(),
            "path": request.path.decode(),
            "prepath": [p.decode() for p in request.prepath],
            "postpath": [p.decode() for p in request.postpath],
            "clientproto": request.clientproto.decode(),
            "client": [type(client).__name__, client.host, client.port],
            "host": [type(host).__name__, host.host, host.port],
            "secure": request.isSecure(),
            "prePathURL": request.prePathURL().decode(),
            "headers": {k.decode(): [v.decode() for v in vs] for k, vs in request.requestHeaders.getAllRawHeaders()},
        }
        return json.dumps(info).encode()


class SessionResource(Resource):
    """Counts visits per session: ``getSession()`` sets the session cookie on the first."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.visits: dict[bytes, int] = {}

    def render_GET(self, request: Any) -> bytes:
        uid = request.getSession().uid
        self.visits[uid] = self.visits.get(uid, 0) + 1
        request.addCookie(b"flavour", b"oatmeal", path=b"/")
        cookie = request.getCookie(b"flavour") or b"none"
        return b"visit %d, cookie %s" % (self.visits[uid], cookie)


#: What ``/generated`` repeats: every byte value, 256 times (64 KiB).
PATTERN = bytes(range(256)) * 256


@implementer(IPushProducer)
class PatternProducer:
    """A push producer writing ``size`` bytes of ``PATTERN``, one chunk per reactor turn,
    until its consumer pauses it."""

    def __init__(self, request: Any, size: int) -> None:
        self.request = request
        self.remaining = size
        self.paused = self.stopped = False
        self.scheduled: IDelayedCall | None = None
        request.registerProducer(self, True)
        self._schedule()

    def _schedule(self) -> None:
        if self.scheduled is None:
            self.scheduled = reactor.callLater(0, self._produce)

    def _produce(self) -> None:
        self.scheduled = None
        if self.paused or self.stopped:
            return
        if not self.remaining:
            self.request.unregisterProducer()
            self.request.finish()
            return
        chunk = PATTERN[: self.remaining]
        self.remaining -= len(chunk)
        self.request.write(chunk)
        self._schedule()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.stopped = True
        if self.scheduled is not None:
            self.scheduled.cancel()
            self.scheduled = None


class GeneratedResource(Resource):
    """``?size=N`` bytes from a push producer."""

    isLeaf = True

    def render_GET(self, request: Any) -> Any:
        size = int(request.args[b"size"][0])
        request.setHeader(b"content-length", b"%d" % size)
        PatternProducer(request, size)
        return NOT_DONE_YET


class SendFileResource(Resource):
    """``?name=`` a file under ``$REVERSE_FILES``, sent with ``FileSender`` (a pull producer)."""

    isLeaf = True

    def render_GET(self, request: Any) -> Any:
        path = os.path.join(os.environ["REVERSE_FILES"], request.args[b"name"][0].decode())
        file = open(path, "rb")  # noqa: SIM115 -- closed when the transfer ends
        request.setHeader(b"content-length", b"%d" % os.path.getsize(path))
        done = FileSender().beginFileTransfer(file, request)
        done.addCallback(lambda _: request.finish())
        done.addBoth(lambda _: file.close())
        return NOT_DONE_YET


class BrokenResource(Resource):
    """Raises while rendering: Twisted answers 500 and logs the traceback."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        raise RuntimeError("legacy resource failed on purpose")


def build_root() -> Resource:
    """The tree: ``/tutorial``, ``/stats``, ``/body``, ``/info``, ``/session``, ``/files/``
    (a ``static.File`` of ``$REVERSE_FILES``), ``/moved`` (a ``util.Redirect``),
    ``/generated``, ``/sendfile`` and ``/broken``."""
    counters = Counters()
    root = Resource()
    root.putChild(b"tutorial", DelayedResource(counters))
    root.putChild(b"stats", StatsResource(counters))
    root.putChild(b"body", BodyResource())
    root.putChild(b"info", InfoResource())
    root.putChild(b"session", SessionResource())
    root.putChild(b"files", static.File(os.environ["REVERSE_FILES"]))
    root.putChild(b"moved", util.Redirect(b"files/"))
    root.putChild(b"generated", GeneratedResource())
    root.putChild(b"sendfile", SendFileResource())
    root.putChild(b"broken", BrokenResource())
    return root
