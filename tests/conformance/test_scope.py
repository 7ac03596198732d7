"""Checklist §2, assertions 1-21: the HTTP connection scope the app is given."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from tests.conformance import wire
from tests.conformance.fronts import DEADLINE, Front
from tests.conformance.rawhttp import Connection
from tests.conformance.script import MUTATE_SCOPE, REPLY, probe_headers


def scope_via_raw(front: Front, method: str, path: str = "/", *, version: str = "HTTP/1.1", headers: Any = ()) -> Any:
    """Send one raw request (the probe's default script) and return the scope it recorded."""
    with Connection(front) as conn:
        extra = list(headers.items()) if isinstance(headers, dict) else list(headers)
        sent = [*probe_headers(f"raw-{method}-{path}").items(), ("Connection", "close"), *extra]
        conn.request(method, path, sent, version=version)
        response = conn.read_response(method)
    assert response.status == 200, response
    return wire.loads(response.body)["scope"]


def scope_via_httpx(front: Front, rid: str, path: str = "/", **client_options: Any) -> tuple[httpx.Response, Any]:
    with httpx.Client(timeout=DEADLINE, **client_options) as client:
        response = client.get(front.url(path), headers=probe_headers(rid))
    assert response.status_code == 200, response.text
    return response, wire.loads(response.content)["scope"]


def is_pair_of_bytes(item: Any) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(type(x) is bytes for x in item)


# -- 1-5: identity, versions, method, scheme -------------------------------------------


def test_app_called_once_with_http_scope_of_asgi_3(front: Front) -> None:
    """1: one call per request, ``type == "http"``, ``asgi.version == "3.0"``."""
    _, scope = scope_via_httpx(front, "a1")
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert front.events().count("http:a1") == 1


@pytest.mark.hypercorn_gap("Hypercorn 0.18 advertises spec_version 2.1 (its send after disconnect does not raise)")
def test_spec_version_is_2_5(front: Front) -> None:
    """2: the advertised spec version is the one fully implemented: 2.5."""
    _, scope = scope_via_httpx(front, "a2")
    assert scope["asgi"]["spec_version"] == "2.5"


@pytest.mark.parametrize(("version", "expected"), [("HTTP/1.0", "1.0"), ("HTTP/1.1", "1.1")])
def test_http_version_1x(front: Front, version: str, expected: str) -> None:
    """3: ``http_version`` is exactly "1.0" / "1.1"."""
    assert scope_via_raw(front, "GET", "/v", version=version)["http_version"] == expected


def test_http2_scope(tls_front: Front, client_tls: ssl.SSLContext) -> None:
    """3, 5, 17, 18: over TLS with ALPN h2: "2", "https", no pseudo-headers, host first, real addresses."""
    response, scope = scope_via_httpx(tls_front, "a3-h2", http2=True, verify=client_tls)
    assert response.http_version == "HTTP/2"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "https"
    names = [name for name, _ in scope["headers"]]
    assert not [n for n in names if n.startswith(b":")], names
    assert scope["headers"][0] == [b"host", f"127.0.0.1:{tls_front.port}".encode()]
    assert names.count(b"host") == 1
    assert scope["client"][0] == "127.0.0.1"  # 18 on a stream: the connection's addresses
    assert scope["server"] == ["127.0.0.1", tls_front.port]


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PROPFIND"])
def test_method_is_the_token_as_str(front: Front, method: str) -> None:
    """4: ``method`` is the request's method token, a str."""
    assert scope_via_raw(front, method, "/m", headers={"Content-Length": "0"})["method"] == method


def test_scheme_http_on_plaintext(front: Front) -> None:
    """5: "http" on a plaintext connection."""
    assert scope_via_httpx(front, "a5")[1]["scheme"] == "http"


def test_scheme_https_over_tls_http11(tls_front: Front, client_tls: ssl.SSLContext) -> None:
    """5: "https" over TLS with HTTP/1.1 (HTTP/2 above)."""
    response, scope = scope_via_httpx(tls_front, "a5-tls", verify=client_tls)
    assert response.http_version == "HTTP/1.1"
    assert scope["scheme"] == "https"
    assert scope["http_version"] == "1.1"


# -- 6-11: path, raw_path, query_string, root_path ----------------------------------------


@pytest.mark.parametrize(
    ("sent", "path", "raw_path"),
    [
        ("/caf%C3%A9/a%20b", "/café/a b", b"/caf%C3%A9/a%20b"),  # 6: percent and UTF-8 decoded
        ("/a%2Fb?x=1", "/a/b", b"/a%2Fb"),  # 7: %2F decoded too; raw_path keeps it, without query
        ("/a+b", "/a+b", b"/a+b"),  # 8: no form decoding
        ("/a/../b", "/a/../b", b"/a/../b"),  # 8: no normalisation
    ],
)
def test_path_and_raw_path(mounted_front: Front, sent: str, path: str, raw_path: bytes) -> None:
    """6, 7, 8: ``path`` is the decoded full path including ``root_path``; ``raw_path`` the bytes sent."""
    scope = scope_via_raw(mounted_front, "GET", sent)
    assert scope["path"] == mounted_front.mount + path
    assert type(scope["raw_path"]) is bytes
    assert scope["raw_path"] == mounted_front.mount.encode() + raw_path


@pytest.mark.parametrize(
    ("sent", "query"),
    [
        ("/p?a=1&b=%20&c=%E2%82%AC&d=x+y", b"a=1&b=%20&c=%E2%82%AC&d=x+y"),  # 9: undecoded bytes
        ("/p", b""),  # 10
        ("/p?", b""),  # 10
        ("/p?a=1?b=2", b"a=1?b=2"),  # 10: everything after the first "?"
    ],
)
def test_query_string(front: Front, sent: str, query: bytes) -> None:
    """9, 10: ``query_string`` is the bytes after the first ``?``, exactly as sent."""
    scope = scope_via_raw(front, "GET", sent)
    assert type(scope["query_string"]) is bytes
    assert scope["query_string"] == query


def test_root_path_is_the_mount_point(mounted_front: Front) -> None:
    """11: mounted at /mnt: ``root_path="/mnt"``, ``path="/mnt/x"``; at the root: ``root_path=""``."""
    scope = scope_via_raw(mounted_front, "GET", "/x")
    assert scope["root_path"] == mounted_front.mount
    assert scope["path"] == mounted_front.mount + "/x"
    assert scope["raw_path"] == f"{mounted_front.mount}/x".encode()


# -- 12-17: headers --------------------------------------------------------------------------


def test_duplicate_headers_kept_separate_in_order(front: Front) -> None:
    """12, 13, 14: duplicates are separate pairs in arrival order, cookies never joined, names lowercased."""
    headers = [("X-Dup", "1"), ("X-Other", "z"), ("Cookie", "a=1"), ("X-Dup", "2"), ("Cookie", "b=2"), ("X-MiXeD", "m")]
    scope = scope_via_raw(front, "GET", "/h", headers=headers)
    pairs = [tuple(p) for p in scope["headers"]]
    assert [v for n, v in pairs if n == b"x-dup"] == [b"1", b"2"]
    assert [v for n, v in pairs if n == b"cookie"] == [b"a=1", b"b=2"]
    assert (b"x-other", b"z") in pairs
    assert (b"x-mixed", b"m") in pairs
    assert not [n for n, _ in pairs if n != n.lower()]


def test_header_values_are_the_bytes_sent(front: Front) -> None:
    """15: a latin-1 byte in a value reaches the app undecoded."""
    scope = scope_via_raw(front, "GET", "/h", headers=[("X-Latin", "caf\xe9 x")])
    assert [v for n, v in scope["headers"] if n == b"x-latin"] == [b"caf\xe9 x"]


def test_headers_are_pairs_of_bytes_with_host(front: Front) -> None:
    """16: every entry is a two-item list/tuple of exactly ``bytes``; HTTP/1.1 ``Host`` is ``(b"host", ...)``."""
    scope = scope_via_raw(front, "GET", "/h")
    assert scope["headers"]
    assert all(is_pair_of_bytes(item) for item in scope["headers"]), scope["headers"]
    assert [b"host", f"127.0.0.1:{front.port}".encode()] in scope["headers"]


# -- 18-21: addresses, scope identity, extensions ------------------------------------------------


def test_client_and_server_addresses(front: Front) -> None:
    """18: ``client`` is the peer's (host, port), ``server`` the listener's."""
    with Connection(front) as conn:
        conn.request("GET", "/addr", probe_headers("a18"))
        response = conn.read_response()
        client_port = conn.local_port
    scope = wire.loads(response.body)["scope"]
    assert scope["client"] == ["127.0.0.1", client_port]
    assert scope["server"] == ["127.0.0.1", front.port]
    assert type(scope["client"][1]) is int and type(scope["server"][1]) is int


@pytest.mark.hypercorn_gap("Hypercorn 0.18 gives server=None on UNIX sockets (spec 2.2 not implemented)")
def test_unix_socket_server_is_path_and_none(front: Front) -> None:
    """19: over a UNIX socket ``server == [path, None]`` and spec_version >= 2.2."""
    path = front.server.info["unix"]
    with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=DEADLINE) as client:
        response = client.get(f"http://localhost{front.target('/unix')}", headers=probe_headers("a19"))
    scope = wire.loads(response.content)["scope"]
    assert scope["server"] == [path, None]
    assert tuple(int(x) for x in scope["asgi"]["spec_version"].split(".")) >= (2, 2)


def test_keep_alive_requests_get_distinct_scopes(front: Front) -> None:
    """20: two requests on one connection: two calls, two scope dicts; mutating one leaves the other intact."""
    with Connection(front) as conn:
        conn.request("GET", "/first?q=1", probe_headers("a20-1", MUTATE_SCOPE, REPLY))
        first = wire.loads(conn.read_response().body)
        conn.request("GET", "/second?q=2", probe_headers("a20-2"))
        second = wire.loads(conn.read_response().body)
    assert second["scope"]["path"] == front.mount + "/second"
    assert second["scope"]["query_string"] == b"q=2"
    assert [b"x-mutated", b"1"] not in second["scope"]["headers"]
    assert first["scope_id"] != second["scope_id"]
    assert second["scope"]["client"] == first["scope"]["client"]  # really the same connection


def test_no_tls_extension_on_plaintext(front: Front) -> None:
    """21: ``extensions`` (if present) is a dict of dicts without "tls" on a plaintext connection."""
    _, scope = scope_via_httpx(front, "a21")
    extensions = scope.get("extensions", {})
    assert isinstance(extensions, dict)
    assert all(isinstance(v, dict) for v in extensions.values())
    assert "tls" not in extensions
