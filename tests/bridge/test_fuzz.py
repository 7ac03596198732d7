"""Fuzzing: pure functions with arbitrary input, and malformed requests at a live server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge._http_cycle import validate_headers
from bridge._proxy import apply_proxy_headers, parse_networks
from bridge._scope import RequestFacts, build_http_scope, build_websocket_scope, split_target
from bridge.errors import ASGIProtocolError
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
header_pairs = st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=80)), max_size=12)


@settings(max_examples=300)
@given(
    uri=st.binary(max_size=200),
    method=st.binary(min_size=1, max_size=12),
    headers=header_pairs,
    prepath=st.lists(st.binary(max_size=20), max_size=4),
)
def test_scope_building_never_fails_and_keeps_raw_bytes(
    uri: bytes, method: bytes, headers: list[tuple[bytes, bytes]], prepath: list[bytes]
) -> None:
    facts = RequestFacts(method, uri, b"HTTP/1.1", headers, prepath)
    for scope in (build_http_scope(facts, {}), build_websocket_scope(facts, {})):
        raw_path, query = split_target(uri)
        assert scope["raw_path"] == raw_path
        assert scope["query_string"] == query
        assert isinstance(scope["path"], str)
        assert isinstance(scope["root_path"], str)
        assert [v for _, v in scope["headers"]] == [v for _, v in headers]
        assert all(n == n.lower() for n, _ in scope["headers"])


@settings(max_examples=300)
@given(st.lists(st.tuples(st.one_of(st.binary(max_size=20), st.text(max_size=5)), st.binary(max_size=40))))
def test_header_validation_accepts_or_raises_protocol_error(headers: list[tuple[object, bytes]]) -> None:
    try:
        checked = validate_headers(headers, "fuzz")
    except ASGIProtocolError:
        return
    for name, value in checked:
        assert name == name.lower()
        assert b"\r" not in value and b"\n" not in value and b"\x00" not in value


@settings(max_examples=300)
@given(headers=header_pairs, client_host=st.sampled_from(["127.0.0.1", "10.1.1.1", "203.0.113.7", "::1"]))
def test_proxy_headers_never_fail(headers: list[tuple[bytes, bytes]], client_host: str) -> None:
    named = [(n, v) for n, v in headers] + [(b"x-forwarded-for", v) for _, v in headers[:2]]
    named += [(b"forwarded", v) for _, v in headers[2:4]]
    view = apply_proxy_headers(named, (client_host, 1), "http", ("127.0.0.1", 80), parse_networks(["127.0.0.0/8"]))
    assert view.scheme in ("http", "https")


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "limits_server.py")]) as running:
        yield running


TOKENS = [b"GET", b"POST", b"G\x00T", b"", b" ", b"\r\n", b"\n", b"HTTP/1.1", b"HTTP/9.9", b"/", b"/limited/x", b"%zz"]
HEADER_LINES = [
    b"Host: x",
    b"Content-Length: 5",
    b"Content-Length: -1",
    b"Content-Length: 5, 6",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked",
    b" folded",
    b"X-Nul: a\x00b",
    b"Bad Header: v",
    b"Expect: 100-continue",
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    line=st.lists(st.sampled_from(TOKENS), min_size=0, max_size=5),
    headers=st.lists(st.sampled_from(HEADER_LINES), max_size=5),
    terminator=st.sampled_from([b"\r\n", b"\n"]),
    body=st.binary(max_size=30),
)
def test_malformed_requests_get_an_answer_or_a_clean_close(
    server: RunningServer, line: list[bytes], headers: list[bytes], terminator: bytes, body: bytes
) -> None:
    request = b" ".join(line) + terminator + terminator.join(headers) + terminator + terminator + body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except ConnectionResetError:
            pass
    if reply:
        status_line = reply.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 "), reply[:200]
        assert int(status_line.split()[1]) < 500 or int(status_line.split()[1]) == 505, reply[:200]
        assert b"Traceback" not in reply
    assert httpx.get(server.url + "/control/health").status_code == 200
