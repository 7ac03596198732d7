"""Read the facts the scope builders need off a Twisted request.

This is the only place that knows where Twisted keeps them (HTTP/1.1 channel
vs HTTP/2 stream, TCP vs TLS vs UNIX transports); ``bridge._scope`` turns the
plain ``RequestFacts`` into a scope.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.web.iweb import IRequest

from bridge._scope import Address, RequestFacts

# IANA TLS cipher suite values for the suites OpenSSL negotiates by default;
# pyOpenSSL only gives the OpenSSL name.  Anything else is reported as None.
_CIPHER_CODES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}


def address_of(address: Any, *, server_side: bool) -> Address | None:
    """ASGI ``client``/``server`` from a Twisted address (spec 2.2 for UNIX)."""
    if isinstance(address, IPv4Address | IPv6Address):
        return (address.host, address.port)
    if isinstance(address, UNIXAddress) and server_side and address.name:
        name = address.name
        return (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name), None)
    return None


def _network_transport(request: IRequest) -> Any:
    channel = request.channel  # type: ignore[attr-defined]
    transport = getattr(channel, "transport", None)
    if transport is None:  # HTTP/2: the stream hides it; the connection has it
        transport = getattr(getattr(channel, "_conn", None), "transport", None)
    return transport


def tls_extension(request: IRequest) -> dict[str, Any] | None:
    """The ``tls`` scope extension (tls.rst), or None for plaintext."""
    transport = _network_transport(request)
    get_handle = getattr(transport, "getHandle", None)
    connection = get_handle() if get_handle is not None else None
    if connection is None or not hasattr(connection, "get_cipher_name"):
        return None
    from cryptography.hazmat.primitives.serialization import Encoding

    own = connection.get_certificate(as_cryptography=True)
    peer = connection.get_peer_certificate(as_cryptography=True)
    return {
        "server_cert": own.public_bytes(Encoding.PEM).decode() if own is not None else None,
        "client_cert_chain": [peer.public_bytes(Encoding.PEM).decode()] if peer is not None else [],
        "client_cert_name": peer.subject.rfc4514_string() if peer is not None else None,
        "client_cert_error": None,
        "tls_version": _tls_version(connection),
        "cipher_suite": _CIPHER_CODES.get(connection.get_cipher_name() or ""),
    }


def _tls_version(connection: Any) -> int | None:
    names = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
    return names.get(connection.get_protocol_version_name())


def _is_secure(request: IRequest) -> bool:
    """``request.isSecure()``, remembered per connection: it is a zope adapter lookup."""
    channel = request.channel  # type: ignore[attr-defined]
    secure: bool | None = getattr(channel, "_bridge_secure", None)
    if secure is None:
        secure = bool(request.isSecure())
        if not getattr(request, "_forceSSL", False):
            channel._bridge_secure = secure
    return secure


def request_facts(request: IRequest, extensions: dict[str, dict[str, Any]] | None = None) -> RequestFacts:
    """Snapshot ``request`` for the scope builders."""
    # The llhttp channel's list (bridge._parsed_headers), unless the headers changed on the way.
    parsed = getattr(request.requestHeaders, "scope_headers", None)
    if parsed is not None:
        headers = list(parsed)
    else:
        headers = [(name, value) for name, values in request.requestHeaders.getAllRawHeaders() for value in values]
    secure = _is_secure(request)
    ext: dict[str, dict[str, Any]] = dict(extensions or {})
    if secure:
        tls = tls_extension(request)
        if tls is not None:
            ext["tls"] = tls
    return RequestFacts(
        method=request.method,
        uri=request.uri,
        clientproto=request.clientproto,  # type: ignore[attr-defined]
        headers=headers,
        prepath=list(request.prepath),
        client=address_of(request.getClientAddress(), server_side=False),
        server=address_of(request.getHost(), server_side=True),
        is_secure=secure,
        extensions=ext,
        headers_lowered=parsed is not None,
    )


__all__ = ["address_of", "request_facts", "tls_extension"]
