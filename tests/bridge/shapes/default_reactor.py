"""The shape that cannot work: the reactor is imported before anyone installed the asyncio one,
so Twisted installs its platform default (epoll) reactor, which cannot run on an asyncio loop."""

from twisted.internet import reactor
from twisted.web.static import Data

from bridge import TwistedResourceApp

reactor.callLater(0, print, "never runs")
app = TwistedResourceApp(Data(b"unreachable", "text/plain"))
