"""Pure construction of ASGI ``http`` and ``websocket`` scopes.

Takes a ``RequestFacts`` snapshot of plain values (no Twisted objects), so the
rules of www.rst (spec 2.5) can be tested with case tables: ``path`` is the
percent-decoded full path *including* ``root_path`` (asgiref#229), ``raw_path``
the bytes as received without the query, ``query_string`` everything after the
first ``?`` untouched, header names lowercased with duplicates and per-name
order preserved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from bridge.types import Scope

SPEC_VERSION = "2.5"

_HTTP_VERSIONS = {b"HTTP/1.0": "1.0", b"HTTP/1.1": "1.1", b"HTTP/2": "2", b"HTTP/2.0": "2"}

Address = tuple[str, int | None]


@dataclass(slots=True)
class RequestFacts:
    """What the scope builders need to know about one request."""

    method: bytes
    #: The request target as received: path and query, still percent-encoded.
    uri: bytes
    #: The protocol token from the request line, e.g. ``b"HTTP/1.1"``.
    clientproto: bytes
    #: Raw ``(name, value)`` pairs in any name case, values in arrival order.
    headers: list[tuple[bytes, bytes]]
    #: Decoded path segments consumed before this resource (``request.prepath``).
    prepath: list[bytes]
    client: Address | None = None
    server: Address | None = None
    is_secure: bool = False
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``headers`` are the HTTP/1.x parser's own list: names lowercased, in arrival order.
    headers_lowered: bool = False


def split_target(uri: bytes) -> tuple[bytes, bytes]:
    """Split a request target into ``(raw_path, query_string)`` at the first ``?``."""
    raw_path, _, query = uri.partition(b"?")
    return raw_path, query


def decode_path(raw_path: bytes) -> str:
    """Percent-decode a raw path into the str ASGI wants.

    Invalid UTF-8 becomes U+FFFD (as uvicorn and Hypercorn do) instead of an
    error: ``raw_path`` still carries the exact bytes for apps that care.
    """
    return unquote_to_bytes(raw_path).decode("utf-8", "replace")


def root_path_of(prepath: Iterable[bytes]) -> str:
    """The mount point, from the segments Twisted consumed to reach us."""
    segments = [s.decode("utf-8", "replace") for s in prepath]
    return "/" + "/".join(segments) if segments else ""


def http_version_of(clientproto: bytes) -> str:
    return _HTTP_VERSIONS.get(clientproto.upper(), "1.1")


def normalise_headers(raw: Iterable[tuple[bytes, bytes]], http_version: str) -> list[tuple[bytes, bytes]]:
    """Lowercase names; on HTTP/2 put the single ``host`` (from ``:authority``) first.

    Twisted's H2 stack strips pseudo-headers but *appends* ``:authority`` as a
    ``host`` header, possibly beside a client-sent one; www.rst says it must
    replace any other ``host`` and lead the list.
    """
    headers = [(name.lower(), value) for name, value in raw]
    if http_version != "2":
        return headers
    hosts = [value for name, value in headers if name == b"host"]
    if not hosts:
        return headers
    return [(b"host", hosts[0])] + [(n, v) for n, v in headers if n != b"host"]


def _base_scope(facts: RequestFacts, state: Mapping[str, Any] | None) -> Scope:
    raw_path, query = split_target(facts.uri)
    http_version = http_version_of(facts.clientproto)
    scope: Scope = {
        "asgi": {"version": "3.0", "spec_version": SPEC_VERSION},
        "http_version": http_version,
        "path": decode_path(raw_path),
        "raw_path": raw_path,
        "root_path": root_path_of(facts.prepath),
        "query_string": query,
        "headers": facts.headers if facts.headers_lowered else normalise_headers(facts.headers, http_version),
        "client": facts.client,
        "server": facts.server,
        "extensions": dict(facts.extensions),
    }
    if state is not None:
        # lifespan.rst: each request gets a *shallow* copy of the namespace.
        scope["state"] = dict(state)
    return scope


def build_http_scope(facts: RequestFacts, state: Mapping[str, Any] | None = None) -> Scope:
    """Return the ASGI ``http`` connection scope for one request."""
    scope = _base_scope(facts, state)
    scope["type"] = "http"
    scope["method"] = facts.method.decode("latin-1").upper()
    scope["scheme"] = "https" if facts.is_secure else "http"
    return scope


def parse_subprotocols(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The client's ``Sec-WebSocket-Protocol`` offers, split on commas, in order."""
    offers: list[str] = []
    for name, value in headers:
        if name.lower() == b"sec-websocket-protocol":
            offers.extend(p.strip() for p in value.decode("latin-1").split(",") if p.strip())
    return offers


def build_websocket_scope(facts: RequestFacts, state: Mapping[str, Any] | None = None) -> Scope:
    """Return the ASGI ``websocket`` connection scope for one upgrade request."""
    scope = _base_scope(facts, state)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if facts.is_secure else "ws"
    scope["subprotocols"] = parse_subprotocols(facts.headers)
    return scope


__all__ = [
    "SPEC_VERSION",
    "RequestFacts",
    "build_http_scope",
    "build_websocket_scope",
    "decode_path",
    "http_version_of",
    "normalise_headers",
    "parse_subprotocols",
    "root_path_of",
    "split_target",
]
