"""Trusted proxy headers (issue 4): ignored by default, believed only when configured.

The bridge's ``/proxied`` mount trusts 127.0.0.1 (``trusted_proxies``); the
Hypercorn reference for it is ``ProxyFixMiddleware(mode="legacy",
trusted_hops=1)``, which reads X-Forwarded-* only and sets the Host header
rather than ``server`` -- the differences are marked where they matter.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conformance import wire
from tests.conformance.fronts import DEADLINE, Front
from tests.conformance.script import probe_headers

FORWARDED = {
    "X-Forwarded-For": "198.51.100.9, 203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "example.com",
}


def scope_with(front: Front, rid: str, headers: dict[str, str]) -> Any:
    response = httpx.get(front.url(f"/{rid}"), headers={**probe_headers(rid), **headers}, timeout=DEADLINE)
    return wire.loads(response.content)["scope"]


def test_forwarded_headers_are_ignored_by_default(front: Front) -> None:
    """Without configuration, neither X-Forwarded-* nor Forwarded changes client, scheme or server."""
    scope = scope_with(front, "px-off", {**FORWARDED, "Forwarded": "for=192.0.2.1;proto=https;host=example.org"})
    assert scope["client"][0] == "127.0.0.1"
    assert scope["scheme"] == "http"
    assert scope["server"] == ["127.0.0.1", front.port]


def test_x_forwarded_from_a_trusted_proxy(proxied_front: Front) -> None:
    """From a trusted peer: client is the nearest untrusted hop of X-Forwarded-For, scheme from X-Forwarded-Proto."""
    scope = scope_with(proxied_front, "px-on", FORWARDED)
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "https"


@pytest.mark.hypercorn_gap("ProxyFixMiddleware rewrites the Host header instead of the scope's server")
def test_x_forwarded_host_sets_server(proxied_front: Front) -> None:
    """From a trusted peer: server is X-Forwarded-Host, with the default port of the forwarded scheme."""
    assert scope_with(proxied_front, "px-host", FORWARDED)["server"] == ["example.com", 443]


@pytest.mark.hypercorn_gap("ProxyFixMiddleware reads Forwarded only in its 'modern' mode, not with X-Forwarded-*")
def test_forwarded_header_from_a_trusted_proxy(proxied_front: Front) -> None:
    """RFC 7239 Forwarded from a trusted peer sets client and scheme."""
    scope = scope_with(proxied_front, "px-rfc", {"Forwarded": "for=192.0.2.1;proto=https;host=example.org"})
    assert scope["client"][0] == "192.0.2.1"
    assert scope["scheme"] == "https"
