"""The Twisted Web tutorial's "Asynchronous Responses" resource, as an .rpy script.

Serve this directory with ``twistd -n web --path app/rpy`` and open /delayed.rpy: the answer
comes five seconds later, and other requests are served meanwhile because ``render_GET`` only
schedules the work and returns ``NOT_DONE_YET``. If the client leaves first, the pending call is
cancelled (the tutorial's follow-up, "Interrupted Responses"). ``app/native.py`` is the same
resource grown up: configurable delay, counters, and the clock injected instead of imported.
"""

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET


class DelayedResource(Resource):
    def _delayedRender(self, request):
        request.write(b"<html><body>Sorry to keep you waiting.</body></html>")
        request.finish()

    def _responseFailed(self, err, call):
        call.cancel()

    def render_GET(self, request):
        call = reactor.callLater(5, self._delayedRender, request)
        request.notifyFinish().addErrback(self._responseFailed, call)
        return NOT_DONE_YET


resource = DelayedResource()
