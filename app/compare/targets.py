"""What ``--sides`` names: for each side, the server it is on, its URL prefix and its ``/stats`` key.

The hybrid site's sides (``app.sides``: ``twisted``, ``asgi``, ``wsgi``) are on the server at ``--url``.
``hypercorn`` is the asyncio side once more, served by Hypercorn without the bridge at
``--hypercorn-url`` (``hybrid serve --server hypercorn``): the pure-asyncio reference for the
bridged ``asgi`` side. Its counters are that server's ``asgi`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from app.sides import SIDES


@dataclass(frozen=True)
class Target:
    """One side of a comparison, as a client reaches it."""

    name: str
    label: str
    #: The base URL of the server serving it, without a trailing slash.
    server: str
    #: The path its tutorial endpoints are under, e.g. ``/asgi``.
    prefix: str
    #: Its entry in the server's ``/stats``.
    stats_key: str

    def url(self, endpoint: str, delay: float) -> str:
        return f"{self.server}{self.prefix}/{endpoint}?delay={delay:g}"


#: The extra side: the site's asyncio side, served by Hypercorn without the bridge.
HYPERCORN = "hypercorn"
KNOWN_SIDES = (*SIDES, HYPERCORN)


def parse_sides(text: str) -> list[str]:
    """``twisted,asgi`` → ``["twisted", "asgi"]``; raises ``ValueError`` naming what is wrong."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("no side given")
    for name in names:
        if name not in KNOWN_SIDES:
            raise ValueError(f"unknown side {name!r} (known sides: {', '.join(KNOWN_SIDES)})")
    if len(set(names)) != len(names):
        raise ValueError(f"a side is named twice in {text!r}")
    return names


def parse_base_url(text: str) -> str:
    """An ``http://host:port`` base URL, without a trailing slash; raises ``ValueError``."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text.rstrip("/")


def resolve(names: list[str], url: str, hypercorn_url: str) -> list[Target]:
    """The targets for side names already checked by ``parse_sides``."""
    return [_target(name, url, hypercorn_url) for name in names]


def _target(name: str, url: str, hypercorn_url: str) -> Target:
    # A side's name is both its URL prefix and its key in /stats (app.sides).
    if name == HYPERCORN:
        return Target(name, "asyncio on Hypercorn", hypercorn_url, "/asgi", "asgi")
    return Target(name, SIDES[name].label, url, f"/{name}", name)
