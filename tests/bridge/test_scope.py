"""Scope building as a pure function: www.rst (spec 2.5) rules as case tables."""

from __future__ import annotations

import pytest

from bridge._scope import (
    RequestFacts,
    build_http_scope,
    build_websocket_scope,
    decode_path,
    normalise_headers,
    parse_subprotocols,
    root_path_of,
    split_target,
)


def facts(uri: bytes = b"/", **kw: object) -> RequestFacts:
    base: dict[str, object] = {
        "method": b"GET",
        "uri": uri,
        "clientproto": b"HTTP/1.1",
        "headers": [(b"Host", b"example.com")],
        "prepath": [],
    }
    base.update(kw)
    return RequestFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "raw_path", "query"),
    [
        (b"/p", b"/p", b""),
        (b"/p?", b"/p", b""),
        (b"/p?a=1?b=2", b"/p", b"a=1?b=2"),
        (b"/p?a=1&b=%20&c=%E2%82%AC&d=x+y", b"/p", b"a=1&b=%20&c=%E2%82%AC&d=x+y"),
    ],
)
def test_split_target_keeps_query_bytes_after_first_question_mark(uri: bytes, raw_path: bytes, query: bytes) -> None:
    assert split_target(uri) == (raw_path, query)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"/caf%C3%A9/a%20b", "/café/a b"),
        (b"/a%2Fb", "/a/b"),
        (b"/a+b", "/a+b"),
        (b"/a/../b", "/a/../b"),
        (b"/bad%FFutf8", "/bad\ufffdutf8"),
        (b"/bad%zz", "/bad%zz"),
        (b"/raw\xe9", "/raw\ufffd"),
    ],
)
def test_decode_path_decodes_percent_and_utf8_without_normalising(raw: bytes, decoded: str) -> None:
    assert decode_path(raw) == decoded


def test_root_path_from_prepath() -> None:
    assert root_path_of([]) == ""
    assert root_path_of([b"asgi"]) == "/asgi"
    assert root_path_of([b"a", b"caf\xc3\xa9"]) == "/a/café"


def test_http_scope_mounted_at_subpath_keeps_root_path_in_path() -> None:
    scope = build_http_scope(facts(b"/mnt/x?q=1", prepath=[b"mnt"]))
    assert scope["root_path"] == "/mnt"
    assert scope["path"] == "/mnt/x"
    assert scope["raw_path"] == b"/mnt/x"
    assert scope["query_string"] == b"q=1"
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}


@pytest.mark.parametrize(("proto", "version"), [(b"HTTP/1.0", "1.0"), (b"HTTP/1.1", "1.1"), (b"HTTP/2", "2")])
def test_http_version_strings(proto: bytes, version: str) -> None:
    assert build_http_scope(facts(clientproto=proto))["http_version"] == version


def test_headers_lowercased_duplicates_and_order_kept() -> None:
    raw = [(b"X-Dup", b"1"), (b"X-Dup", b"2"), (b"Cookie", b"a=1"), (b"Cookie", b"b=2"), (b"X-Bytes", b"caf\xe9 x")]
    scope = build_http_scope(facts(headers=raw))
    assert scope["headers"] == [
        (b"x-dup", b"1"),
        (b"x-dup", b"2"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"x-bytes", b"caf\xe9 x"),
    ]
    assert all(type(n) is bytes and type(v) is bytes for n, v in scope["headers"])


def test_http2_single_host_first() -> None:
    raw = [(b"host", b"authority.example"), (b"accept", b"*/*"), (b"host", b"client-sent.example")]
    assert normalise_headers(raw, "2") == [(b"host", b"authority.example"), (b"accept", b"*/*")]
    assert normalise_headers(raw, "1.1") == raw


def test_method_scheme_client_server() -> None:
    scope = build_http_scope(
        facts(method=b"propfind", client=("127.0.0.1", 5000), server=("127.0.0.1", 8080), is_secure=True)
    )
    assert scope["method"] == "PROPFIND"
    assert scope["scheme"] == "https"
    assert scope["client"] == ("127.0.0.1", 5000)
    assert scope["server"] == ("127.0.0.1", 8080)


def test_unix_socket_server_form() -> None:
    scope = build_http_scope(facts(client=None, server=("/run/app.sock", None)))
    assert scope["server"] == ("/run/app.sock", None)
    assert scope["client"] is None


def test_state_is_a_shallow_copy() -> None:
    shared: list[str] = []
    state = {"k": "v", "items": shared}
    first = build_http_scope(facts(), state)
    first["state"]["k"] = "changed"
    first["state"]["n"] = 1
    first["state"]["items"].append("x")
    second = build_http_scope(facts(), state)
    assert second["state"] == {"k": "v", "items": ["x"]}


def test_no_state_key_without_state() -> None:
    assert "state" not in build_http_scope(facts())


def test_extensions_are_copied_per_scope() -> None:
    f = facts(extensions={"http.response.pathsend": {}})
    one, two = build_http_scope(f), build_http_scope(f)
    one["extensions"]["x"] = {}
    assert two["extensions"] == {"http.response.pathsend": {}}


def test_websocket_scope() -> None:
    raw = [(b"Host", b"h"), (b"Sec-WebSocket-Protocol", b"chat, superchat"), (b"Sec-WebSocket-Protocol", b"x")]
    scope = build_websocket_scope(facts(b"/ws?t=1", headers=raw, is_secure=False))
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/ws"
    assert scope["query_string"] == b"t=1"
    assert scope["subprotocols"] == ["chat", "superchat", "x"]
    assert "method" not in scope
    assert build_websocket_scope(facts(is_secure=True))["scheme"] == "wss"


def test_parse_subprotocols_empty() -> None:
    assert parse_subprotocols([(b"host", b"h")]) == []
