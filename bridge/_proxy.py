"""Trusted proxy headers: ``Forwarded`` (RFC 7239) and ``X-Forwarded-*``.

Off by default.  Headers are believed only when the *immediate* peer is a
configured proxy, and ``X-Forwarded-For`` is walked from the right, skipping
trusted hops, so a client cannot spoof its address by sending its own header
(the leftmost entry is whatever the client claimed).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bridge._scope import Address
from bridge.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyView:
    """What a trusted proxy says about the original request."""

    client: Address | None
    scheme: str
    server: Address | None


def parse_networks(specs: Iterable[str]) -> tuple[Network, ...]:
    """Parse ``"10.0.0.1"``, ``"10.0.0.0/8"``, ``"::1"`` or ``"*"`` (trust any peer)."""
    networks: list[Network] = []
    for spec in specs:
        if spec == "*":
            networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        else:
            networks.append(ipaddress.ip_network(spec.strip(), strict=False))
    return tuple(networks)


def is_trusted(host: str | None, networks: Sequence[Network]) -> bool:
    if host is None or not networks:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in networks)


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for n, v in headers if n == name]


def _forwarded_pairs(values: list[str]) -> list[dict[str, str]]:
    """Parse ``Forwarded`` elements into dicts of lowercase parameter names."""
    elements: list[dict[str, str]] = []
    for value in values:
        for element in value.split(","):
            params: dict[str, str] = {}
            for pair in element.split(";"):
                key, sep, val = pair.partition("=")
                if sep:
                    params[key.strip().lower()] = val.strip().strip('"')
            if params:
                elements.append(params)
    return elements


def _strip_port(node: str) -> tuple[str, int | None]:
    """Split ``1.2.3.4:80`` / ``[::1]:80`` / ``::1`` into host and optional port."""
    if node.startswith("["):
        host, _, rest = node[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isascii() and port.isdigit() else None
    if node.count(":") == 1:
        host, _, port = node.partition(":")
        return host, int(port) if port.isascii() and port.isdigit() else None
    return node, None


def _pick_client(chain: list[str], networks: Sequence[Network]) -> str | None:
    """The rightmost address in ``chain`` that is not a trusted proxy."""
    for node in reversed(chain):
        host, _ = _strip_port(node)
        if not is_trusted(host, networks):
            return host
    return _strip_port(chain[0])[0] if chain else None


def _host_to_server(host: str, scheme: str) -> Address:
    name, port = _strip_port(host)
    if port is None:
        port = 443 if scheme in ("https", "wss") else 80
    return name, port


def apply_proxy_headers(
    headers: list[tuple[bytes, bytes]],
    client: Address | None,
    scheme: str,
    server: Address | None,
    networks: Sequence[Network],
) -> ProxyView:
    """Return client, scheme and server as a trusted proxy reports them.

    ``headers`` are lowercased ASGI pairs; ``scheme`` is ``http``/``https``
    (WebSocket callers map the result to ``ws``/``wss`` themselves).
    """
    if client is None or not is_trusted(client[0], networks):
        return ProxyView(client, scheme, server)
    forwarded = _forwarded_pairs(_header_values(headers, b"forwarded"))
    if forwarded:
        chain = [e["for"] for e in forwarded if "for" in e]
        last = forwarded[-1]
        proto = last.get("proto", scheme).lower()
        host = last.get("host")
    else:
        chain = [
            part.strip()
            for value in _header_values(headers, b"x-forwarded-for")
            for part in value.split(",")
            if part.strip()
        ]
        protos = _header_values(headers, b"x-forwarded-proto")
        proto = protos[-1].split(",")[-1].strip().lower() if protos else scheme
        hosts = _header_values(headers, b"x-forwarded-host")
        host = hosts[-1].split(",")[-1].strip() if hosts else None
    if proto not in ("http", "https"):
        proto = scheme
    picked = _pick_client(chain, networks)
    new_client: Address | None = (picked, 0) if picked else client
    new_server = _host_to_server(host, proto) if host else server
    return ProxyView(new_client, proto, new_server)


_AS_HTTP = {"ws": "http", "wss": "https"}
_AS_WS = {"http": "ws", "https": "wss"}


def apply_to_scope(scope: Scope, networks: Sequence[Network]) -> None:
    """Rewrite an http or websocket scope's client, scheme and server as a trusted proxy reports them."""
    scheme: str = scope["scheme"]
    view = apply_proxy_headers(
        scope["headers"], scope["client"], _AS_HTTP.get(scheme, scheme), scope["server"], networks
    )
    scope["client"], scope["server"] = view.client, view.server
    scope["scheme"] = _AS_WS[view.scheme] if scope["type"] == "websocket" else view.scheme


__all__ = ["ProxyView", "apply_proxy_headers", "apply_to_scope", "is_trusted", "parse_networks"]
