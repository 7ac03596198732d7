"""The sides of the hybrid site: one concurrency model each, serving the same tutorial endpoints.

This is the one list of sides. ``/stats`` has an entry per side, in this order; every side serves
``/<name>/delayed`` and ``/<name>/stream`` with byte-identical answers; tools that compare sides
(``hybrid compare``, the dashboard) take names, paths and labels from here. Adding a side is an
entry here plus its endpoints, mounted in ``app.site``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: The tutorial endpoints every side serves.
ENDPOINTS = ("delayed", "stream")


@dataclass(frozen=True)
class Side:
    """One concurrency model of the site."""

    #: Its key in ``/stats`` and its URL prefix.
    name: str
    #: A short label for tables and chart legends.
    label: str
    #: How a request waits, in one line.
    waits: str

    def path(self, endpoint: str) -> str:
        """The URL path of one of its endpoints, e.g. ``/wsgi/delayed``."""
        return f"/{self.name}/{endpoint}"


SIDES: Mapping[str, Side] = MappingProxyType(
    {
        side.name: side
        for side in (
            Side("twisted", "Twisted (callbacks)", "reactor.callLater, the resource returns NOT_DONE_YET"),
            Side("asgi", "asyncio via bridge", "await anyio.sleep in Starlette, through bridge.ASGIResource"),
            Side("wsgi", "WSGI (threads)", "time.sleep in a thread of the reactor's pool, through WSGIResource"),
        )
    }
)
