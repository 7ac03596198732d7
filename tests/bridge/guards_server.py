"""A StreamingSite with tight guards, for test_site_guards.  Prints LISTENING <port>.

Usage: guards_server.py HEADER_TIMEOUT MAX_CONNECTIONS [tls CERT KEY]
"""

from __future__ import annotations

import os
import sys

from bridge import http_channel_class, install_reactor

# The suite's fast-lane switches (see tests/conftest.py): uvloop, the llhttp channel.
install_reactor(loop=os.environ.get("HYBRID_TEST_LOOP"))
CHANNEL = http_channel_class(os.environ.get("HYBRID_TEST_HTTP", "twisted"))

from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402
from twisted.web.server import NOT_DONE_YET, Request  # noqa: E402

from bridge import StreamingSite  # noqa: E402


class Slow(Resource):
    """Answers after ?delay= seconds: a request that outlives the header timeout."""

    isLeaf = True

    def render_GET(self, request: Request) -> object:
        delay = float(request.args[b"delay"][0])  # type: ignore[index]  # args is set by now
        deferLater(reactor, delay, lambda: None).addCallback(lambda _: (request.write(b"late"), request.finish()))
        return NOT_DONE_YET


class InFlight(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"%d %d" % (site.in_flight, site.open_connections)


header_timeout = float(sys.argv[1])
max_connections = int(sys.argv[2]) or None
root = Resource()
root.putChild(b"slow", Slow())
root.putChild(b"state", InFlight())
site = StreamingSite(
    root,
    header_timeout=header_timeout,
    max_connections=max_connections,
    max_header_count=20,
    channel_class=CHANNEL,
)
if len(sys.argv) > 3:
    description = f"ssl:0:interface=127.0.0.1:certKey={sys.argv[4]}:privateKey={sys.argv[5]}"
else:
    description = "tcp:0:interface=127.0.0.1"
globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
endpoints.serverFromString(reactor, description).listen(site).addCallback(
    lambda port: print(f"LISTENING {port.getHost().port}", flush=True)
)
reactor.run()
