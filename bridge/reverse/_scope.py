"""What a ``twisted.web`` Request needs from an ASGI HTTP scope, as pure functions.

A native ``HTTPChannel`` learns these from its transport and the request line; under the
reverse adapter the ASGI server has already parsed them into the scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.interfaces import IAddress

from bridge.types import Scope


def to_address(endpoint: Sequence[Any] | None) -> IAddress:
    """Turn a scope's ``client`` or ``server`` pair into the address Twisted would report.

    ``(path, None)`` is a UNIX socket; an unknown endpoint is an anonymous ``UNIXAddress``,
    which is what Twisted reports for an unnamed UNIX socket peer.
    """
    if endpoint is None:
        return UNIXAddress(None)
    host, port = endpoint
    if port is None:
        return UNIXAddress(str(host).encode())
    if ":" in host:
        return IPv6Address("TCP", host, port)
    return IPv4Address("TCP", host, port)


def request_uri(scope: Scope) -> bytes:
    """The request-target as it came off the wire: ``raw_path`` plus the query string."""
    path: bytes = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    query = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def client_protocol(scope: Scope) -> bytes:
    """``HTTP/1.1``-style version, as ``Request.clientproto`` holds it (``HTTP/2`` for h2)."""
    version: str = scope.get("http_version", "1.1")
    return b"HTTP/" + version.encode("ascii")


def root_segments(scope: Scope) -> list[bytes]:
    """The path segments of ``root_path``, as ``Request.prepath`` holds them (unquoted)."""
    root = scope.get("root_path", "").strip("/")
    return [segment.encode() for segment in root.split("/")] if root else []


def content_length(scope: Scope) -> int | None:
    """The declared body length, or ``None`` when the client did not declare one."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def is_secure(scope: Scope) -> bool:
    return scope.get("scheme") in ("https", "wss")
