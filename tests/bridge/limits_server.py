"""A bridge server with tight limits, for test_limits.  Prints LISTENING <port>.

With the argument ``plain`` the tree is served by Twisted's own ``Site``
(bodies buffered by Twisted) instead of ``bridge.StreamingSite``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from bridge import http_channel_class, install_reactor

# The suite's fast-lane switches (see tests/conftest.py): uvloop, the llhttp channel.
install_reactor(loop=os.environ.get("HYBRID_TEST_LOOP"))
CHANNEL = http_channel_class(os.environ.get("HYBRID_TEST_HTTP", "twisted"))

from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402
from twisted.web.server import Site  # noqa: E402

from bridge import ASGIResource, StreamingSite  # noqa: E402
from bridge.types import Receive, Scope, Send  # noqa: E402

gate = asyncio.Event()
waiting = 0


async def held(scope: Scope, receive: Receive, send: Send) -> None:
    """Counts itself in, waits for the gate, then answers with the body size it read."""
    global waiting
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/wait"):
        waiting += 1
        await gate.wait()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"%d" % size})


async def control(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"].endswith("/release"):
        gate.set()
    body = b"%d" % waiting
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def never_answers(scope: Scope, receive: Receive, send: Send) -> None:
    await asyncio.Event().wait()


globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
root = Resource()
root.putChild(b"limited", ASGIResource(held, max_body_size=1000, max_in_flight=2))
root.putChild(b"control", ASGIResource(control))
root.putChild(b"slow", ASGIResource(never_answers, response_timeout=0.2))


def announce(port: object) -> None:
    print(f"LISTENING {port.getHost().port}", flush=True)  # type: ignore[attr-defined]


site = Site(root) if sys.argv[1:] == ["plain"] else StreamingSite(root, channel_class=CHANNEL)
endpoints.serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site).addCallback(announce)
reactor.run()
