"""Hostile and malformed input over raw sockets, on both sides (``/a``: ASGI, ``/n``: native).

Every framing problem gets one answer and a closed connection, never two interpretations: the
smuggling payloads carry a second request in their body, and a reply holding two responses
would mean the server read it. Some of these Twisted 26.10 refuses by itself; the rest
``bridge._channel.GuardedHTTPChannel`` refuses (its docstring lists which). Bytes that are
merely odd (percent-encoding that decodes to nothing sensible) reach the app unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.hardening.apps import SECRET
from tests.hardening.conftest import Server, serve
from tests.hardening.wire import exchange

SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[Server]:
    with serve(http=http) as running:
        yield running


def post(side: str, headers: bytes, body: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"POST /" + side.encode() + b"/echo " + version + b"\r\nHost: x\r\n" + headers + b"\r\n" + body


def chunked(side: str, body: bytes) -> bytes:
    return post(side, b"Transfer-Encoding: chunked\r\n", body)


# (what, request for a side, status): each must be refused with that status and a close.
REFUSED = [
    # Twisted refuses these by itself.
    (
        "content-length and chunked",
        lambda s: post(s, b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
        400,
    ),
    (
        "chunked and content-length",
        lambda s: post(s, b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n" + SMUGGLED),
        400,
    ),
    (
        "two equal content-lengths",
        lambda s: post(s, b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc" + SMUGGLED),
        400,
    ),
    ("two content-lengths", lambda s: post(s, b"Content-Length: 3\r\nContent-Length: 40\r\n", b"abc" + SMUGGLED), 400),
    ("content-length list", lambda s: post(s, b"Content-Length: 3, 3\r\n", b"abc" + SMUGGLED), 400),
    ("content-length with sign", lambda s: post(s, b"Content-Length: +3\r\n", b"abc" + SMUGGLED), 400),
    ("space before colon", lambda s: post(s, b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED), 400),
    ("gzip then chunked", lambda s: post(s, b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n" + SMUGGLED), 400),
    ("bare LF inside a header", lambda s: post(s, b"X-A: a\nContent-Length: 3\r\n", b"abc" + SMUGGLED), 400),
    ("bare CR inside a header", lambda s: post(s, b"X-A: a\rContent-Length: 3\r\n", b"abc" + SMUGGLED), 400),
    ("NUL in a header value", lambda s: post(s, b"X-A: a\x00b\r\n", b""), 400),
    ("NUL in a header name", lambda s: post(s, b"X\x00A: ab\r\n", b""), 400),
    ("NUL in the target", lambda s: b"GET /" + s.encode() + b"/echo\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("chunk size 0x", lambda s: chunked(s, b"0x3\r\nabc\r\n0\r\n\r\n" + SMUGGLED), 400),
    ("negative chunk size", lambda s: chunked(s, b"-3\r\nabc\r\n0\r\n\r\n" + SMUGGLED), 400),
    ("space after chunk size", lambda s: chunked(s, b"3 \r\nabc\r\n0\r\n\r\n" + SMUGGLED), 400),
    ("chunk longer than its size", lambda s: chunked(s, b"3\r\nabcd\r\n0\r\n\r\n" + SMUGGLED), 400),
    ("chunk extension over 1 KiB", lambda s: chunked(s, b"3;" + b"e" * 2000 + b"\r\nabc\r\n0\r\n\r\n"), 400),
    ("control byte in a chunk extension", lambda s: chunked(s, b"3;\x01\r\nabc\r\n0\r\n\r\n"), 400),
    ("method not a token", lambda s: b"G(T /" + s.encode() + b"/echo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("two spaces in the request line", lambda s: b"GET  /" + s.encode() + b"/echo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("HTTP/0.9 request line", lambda s: b"GET /" + s.encode() + b"/echo\r\n\r\n", 400),
    ("version not HTTP", lambda s: b"GET /" + s.encode() + b"/echo HTTPS/1.1\r\nHost: x\r\n\r\n", 400),
    ("lowercase version", lambda s: b"GET /" + s.encode() + b"/echo http/1.1\r\nHost: x\r\n\r\n", 400),
    # GuardedHTTPChannel refuses these (Twisted 26.10 serves them).
    (
        "identity with content-length",
        lambda s: post(s, b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n", b"abc" + SMUGGLED),
        400,
    ),
    (
        "chunked then identity",
        lambda s: post(s, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"0\r\n\r\n" + SMUGGLED),
        400,
    ),
    (
        "chunked on HTTP/1.0",
        lambda s: post(s, b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED, b"HTTP/1.0"),
        400,
    ),
    ("obs-fold", lambda s: post(s, b"X-A: a\r\n Content-Length: 3\r\n", b"abc" + SMUGGLED), 400),
    ("only bare LFs", lambda s: b"GET /" + s.encode() + b"/echo HTTP/1.1\nHost: x\n\n", 400),
    ("two Host headers", lambda s: b"GET /" + s.encode() + b"/echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("no Host on HTTP/1.1", lambda s: b"GET /" + s.encode() + b"/echo HTTP/1.1\r\n\r\n", 400),
    ("chunk size over 60 bits", lambda s: chunked(s, b"10000000000000003\r\nabc\r\n0\r\n\r\n" + SMUGGLED), 400),
    ("bare LF after a chunk size", lambda s: chunked(s, b"3\nabc\n0\n\n"), 400),
    ("bare LF in the trailer", lambda s: chunked(s, b"3\r\nabc\r\n0\r\n\n"), 400),
    ("DEL in the target", lambda s: b"GET /" + s.encode() + b"/echo\x7f HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("raw 0x80 in the target", lambda s: b"GET /" + s.encode() + b"/echo\x80 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("raw UTF-8 in the target", lambda s: b"GET /" + s.encode() + b"/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("HTTP/2.0 request line", lambda s: b"GET /" + s.encode() + b"/echo HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/1.2", lambda s: b"GET /" + s.encode() + b"/echo HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    ("HTTP/9.9", lambda s: b"GET /" + s.encode() + b"/echo HTTP/9.9\r\nHost: x\r\n\r\n", 505),
]


@pytest.mark.parametrize("side", ["a", "n"])
@pytest.mark.parametrize(("request_for", "status"), [(r, s) for _, r, s in REFUSED], ids=[w for w, _, _ in REFUSED])
def test_refused_with_one_answer_and_a_close(server: Server, side: str, request_for: object, status: int) -> None:
    assert callable(request_for)
    reply = exchange(server.port, request_for(side))
    assert reply.status == status, reply.data[:300]
    assert reply.closed
    assert reply.data.count(b"HTTP/1.1 ") == 1, reply.data[:300]
    assert server.healthy()


def test_http2_prior_knowledge_preface_gets_505(server: Server) -> None:
    """Cleartext HTTP/2 without an upgrade is not served; the preface is refused, not misread."""
    reply = exchange(server.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert (reply.status, reply.closed) == (505, True)
    assert server.healthy()


@pytest.mark.parametrize("side", ["a", "n"])
def test_well_formed_chunked_body_with_an_extension_is_read(server: Server, side: str) -> None:
    """The stricter chunked decoder still reads what RFC 9112 allows."""
    body = b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nTrailer-Field: t\r\n\r\n"
    reply = exchange(server.port, post(side, b"Transfer-Encoding: chunked\r\nConnection: close\r\n", body))
    assert reply.status == 200
    assert json.loads(reply.body)["body_length"] == 5


@pytest.mark.parametrize(
    ("side", "target", "raw_path"),
    [
        ("a", b"/a/echo/%zz%FF%C3%28%", "/a/echo/%zz%FF%C3%28%"),
        ("n", b"/n/echo/%zz%FF%C3%28%", "/n/echo/%zz%FF%C3%28%"),
    ],
)
def test_invalid_percent_encoding_reaches_raw_path_unchanged(
    server: Server, side: str, target: bytes, raw_path: str
) -> None:
    reply = exchange(server.port, b"GET " + target + b"?q=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.status == 200
    echo = json.loads(reply.body)
    assert echo["raw_path"] == raw_path
    if side == "a":
        assert echo["path"] == "/a/echo/%zz\ufffd\ufffd(%"  # decoded, invalid UTF-8 replaced
        assert echo["query_string"] == "q=%zz"
    assert server.healthy()


@pytest.mark.parametrize("side", ["a", "n"])
def test_unknown_token_method_reaches_the_app(server: Server, side: str) -> None:
    reply = exchange(
        server.port, b"FROBNICATE /" + side.encode() + b"/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert reply.status == 200
    assert json.loads(reply.body)["method"] == "FROBNICATE"


def test_absurdly_long_method_gets_431(server: Server) -> None:
    reply = exchange(server.port, b"G" * 20000 + b" /a/echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (reply.status, reply.closed) == (431, True)
    assert server.healthy()


def test_asgi_response_header_injection_is_refused(server: Server) -> None:
    """The bridge refuses CR/LF in an app's header value: 500, and no injected header line."""
    reply = exchange(server.port, b"GET /a/inject HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.status == 500
    assert reply.header(b"x-injected") is None
    assert b"injected" not in reply.body
    assert "ASGI protocol violation on GET /a/inject" in server.log()


def test_native_response_header_injection_is_neutralised(server: Server) -> None:
    """Twisted replaces CR/LF in a header value with spaces: still one header line."""
    reply = exchange(server.port, b"GET /n/inject HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.status == 200
    assert reply.header(b"x-injected") is None
    assert reply.header(b"x-test") == b"ok X-Injected: yes"  # CR LF -> one space


@pytest.mark.parametrize("side", ["a", "n"])
def test_error_bodies_carry_no_traceback(server: Server, side: str) -> None:
    reply = exchange(server.port, b"GET /" + side.encode() + b"/raise HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.status == 500
    assert SECRET.encode() not in reply.data
    assert b"Traceback" not in reply.data
    assert b"RuntimeError" not in reply.data
    assert SECRET in server.log()  # the details are in the log
    assert server.healthy()
