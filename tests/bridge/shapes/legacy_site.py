"""A legacy site written as Klein and the Twisted Web howtos write one: reactor imported at the top.

Nothing here knows about ASGI.  ``eager.py`` imports this module at import time, after
``bridge.install_reactor()``, and serves ``build_root()`` through ``TwistedResourceApp``;
``factory.py`` hands over ``build_root`` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from klein import Klein
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web import static, util, xmlrpc
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.websocket import WebSocketResource

from tests.bridge.shapes.legacy_ws import ENDINGS, STREAMS, EchoFactory

klein_app = Klein()


@klein_app.route("/hello/<name>")
def hello(request: Any, name: str) -> str:
    return f"hello {name}"


@klein_app.route("/later")
def later(request: Any) -> Any:
    return deferLater(reactor, 0.01, lambda: b"later, from a Deferred")


class Calculator(xmlrpc.XMLRPC):
    """XML-RPC as in Twisted's howto: methods are ``xmlrpc_<name>``."""

    def xmlrpc_add(self, a: int, b: int) -> int:
        return a + b

    def xmlrpc_fail(self) -> None:
        raise xmlrpc.Fault(7, "failed on purpose")


class Delayed(Resource):
    """NOT_DONE_YET answered by a callLater, cancelled when the client goes away."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0
        self.abandoned = 0

    def render_GET(self, request: Any) -> Any:
        delay = float(request.args.get(b"delay", [b"0"])[0])
        call = reactor.callLater(delay, self._finish, request)
        self.pending += 1

        def abandoned(_: Any) -> None:
            self.pending -= 1
            self.abandoned += 1
            call.cancel()

        request.notifyFinish().addErrback(abandoned)
        return NOT_DONE_YET

    def _finish(self, request: Any) -> None:
        self.pending -= 1
        request.write(b"finished after the delay\n")
        request.finish()


class DelayedStats(Resource):
    isLeaf = True

    def __init__(self, delayed: Delayed) -> None:
        super().__init__()
        self.delayed = delayed

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"pending": self.delayed.pending, "abandoned": self.delayed.abandoned}).encode()


class Upload(Resource):
    """A multipart form upload: Twisted parses it into ``request.args``."""

    isLeaf = True

    def render_POST(self, request: Any) -> bytes:
        data = request.args[b"file"][0]
        title = request.args[b"title"][0].decode()
        return f"{title}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}".encode()


class Visits(Resource):
    """Counts visits per session."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        session = request.getSession()
        session.visits = getattr(session, "visits", 0) + 1
        return b"visit %d" % session.visits


class WebSocketState(Resource):
    """How WebSocket connections ended and how far each stream got (``legacy_ws``)."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        streams = [{"sent": s.count - s.remaining, "paused": s.paused} for s in STREAMS]
        return json.dumps({"endings": ENDINGS, "streams": streams}).encode()


def build_root() -> Resource:
    """``/klein/...``, ``/rpc``, ``/delayed``, ``/delayed-stats``, ``/upload``, ``/visits``,
    ``/files/`` (``$LEGACY_FILES``), ``/old-files`` (a redirect), ``/ws`` (``legacy_ws``) and ``/ws-state``."""
    root = Resource()
    delayed = Delayed()
    root.putChild(b"klein", klein_app.resource())
    root.putChild(b"rpc", Calculator())
    root.putChild(b"delayed", delayed)
    root.putChild(b"delayed-stats", DelayedStats(delayed))
    root.putChild(b"upload", Upload())
    root.putChild(b"visits", Visits())
    root.putChild(b"files", static.File(os.environ["LEGACY_FILES"]))
    root.putChild(b"old-files", util.Redirect(b"/files/"))
    root.putChild(b"ws", WebSocketResource(EchoFactory()))
    root.putChild(b"ws-state", WebSocketState())
    return root
