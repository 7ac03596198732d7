"""Our reverse adapter: the native resource tree as an ASGI app (``bridge.TwistedResourceApp``),
for an asyncio server to run (``hypercorn bench.servers.reverse:app``).

The tree is built lazily, once the adapter has started the asyncio reactor on the server's loop;
no body-size limit, so the upload workload measures the adapter rather than its 413.
"""

from twisted.web.resource import Resource

from bridge.reverse import TwistedResourceApp


def _root() -> Resource:
    from twisted.internet import reactor

    from bench.servers.resources import native_root

    return native_root(reactor)


app = TwistedResourceApp(_root, max_body_size=None)
