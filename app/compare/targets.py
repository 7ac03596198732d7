"""What ``--sides`` names: for each side, the server it is on, its URL prefix and its ``/stats`` key.

``twisted``, ``asgi`` and ``wsgi`` are the hybrid site's sides on the server at ``--url``.
``hypercorn`` is the asyncio side once more, served by Hypercorn without the bridge at
``--hypercorn-url`` (``hybrid serve --server hypercorn``): the pure-asyncio reference for the
bridged ``asgi`` side. Its counters are that server's ``asgi`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


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


#: name: (label, on the hypercorn server?, prefix, stats key)
_KNOWN = {
    "twisted": ("callbacks", False, "/twisted", "twisted"),
    "asgi": ("coroutines, bridged", False, "/asgi", "asgi"),
    "wsgi": ("threads", False, "/wsgi", "wsgi"),
    "hypercorn": ("coroutines, Hypercorn", True, "/asgi", "asgi"),
}
KNOWN_SIDES = tuple(_KNOWN)


def parse_sides(text: str) -> list[str]:
    """``twisted,asgi`` → ``["twisted", "asgi"]``; raises ``ValueError`` naming what is wrong."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError("no side given")
    for name in names:
        if name not in _KNOWN:
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
    targets = []
    for name in names:
        label, on_hypercorn, prefix, key = _KNOWN[name]
        targets.append(Target(name, label, hypercorn_url if on_hypercorn else url, prefix, key))
    return targets
