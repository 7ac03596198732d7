# -*- test-case-name: tests.hardening.test_limits -*-
"""``InFlightLimit``: at most N requests at once in a Twisted subtree; the rest get 503 at once.

``bridge.ASGIResource(max_in_flight=N)`` bounds each ASGI mount. This does the same for what
Twisted serves itself (the ``/twisted`` and ``/wsgi`` sides, mounted resources and WSGI apps), so
an overload is refused with 503 and ``Retry-After`` instead of queueing without bound (for the
WSGI side: in the thread pool's queue). A request counts from the moment it is routed into the
subtree until its response is finished or its client has gone (``notifyFinish``). It works on
both fronts: the Hypercorn front serves the same resources through ``bridge.TwistedResourceApp``.
"""

from __future__ import annotations

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request
from zope.interface import implementer

from app.sides import SIDES
from bridge import ASGIResource

#: What a refused client is told to wait before trying again, in seconds.
RETRY_AFTER = 1


@implementer(IResource)
class InFlightLimit:
    """Serves ``resource`` (a leaf or a whole subtree) to at most ``limit`` requests at a time."""

    def __init__(self, resource: IResource, limit: int) -> None:
        self._resource = resource
        self._limit = limit
        self.in_flight = 0

    @property
    def isLeaf(self) -> bool:
        return bool(self._resource.isLeaf)

    def getChildWithDefault(self, name: bytes, request: Request) -> IResource:
        # Traversal asks the subtree's top for a child once per request, or renders it.
        if not self._admit(request):
            return _Overloaded()
        return self._resource.getChildWithDefault(name, request)

    def render(self, request: Request) -> bytes | int:
        if not self._admit(request):
            return _Overloaded().render(request)
        return self._resource.render(request)

    def putChild(self, path: bytes, child: IResource) -> None:
        self._resource.putChild(path, child)

    def _admit(self, request: Request) -> bool:
        if self.in_flight >= self._limit:
            return False
        self.in_flight += 1
        request.notifyFinish().addBoth(self._ended)
        return True

    def _ended(self, _: object) -> None:
        self.in_flight -= 1


class _Overloaded(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        request.setResponseCode(503)
        request.setHeader(b"retry-after", b"%d" % RETRY_AFTER)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"Service Unavailable\n"


def limit_native_sides(root: Resource, limit: int | None) -> None:
    """Put each side of the hybrid site that the bridge does not bound behind its own limit."""
    if limit is None:
        return
    for name in SIDES:
        child = root.children.get(name.encode())
        if child is not None and not isinstance(child, ASGIResource | InFlightLimit):
            root.putChild(name.encode(), InFlightLimit(child, limit))
