"""Differential fuzzing: the llhttp channel and Twisted's parser must agree on every request.

Hypothesis builds requests from well-formed parts and the ways real clients and
smugglers get them wrong (odd versions, methods and targets, repeated or
malformed framing headers, obs-fold, bare LF, NUL and high bytes, chunked
bodies with bad sizes, extensions and trailers, pipelined followers), sends
the same bytes, cut at the same places, to a ``StreamingSite`` on each channel
(``tests.bridge.h1_pair``), and asserts the same outcome: the same responses
(accepted, or which 4xx/5xx), and for accepted requests the same method,
target, version, headers and body at the resource.

Two differences are on purpose and tested apart: a Content-Length beyond 64
bits gets 400 from llhttp, where Twisted would wait for a body no one can send,
and so does DEL in a header value, which RFC 9110 (5.5) does not allow.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge._channel import GuardedHTTPChannel
from tests.bridge.h1_pair import feed

httptools_channel = pytest.importorskip("bridge._fast_channel").HttpToolsChannel

METHODS = [
    b"GET",
    b"POST",
    b"PUT",
    b"HEAD",
    b"DELETE",
    b"OPTIONS",
    b"FROBNICATE",
    b"CONNECT",
    b"PRI",
    b"get",
    b"G(T",
    b"",
]
TARGETS = [
    b"/",
    b"/a/b?c=d&e",
    b"/%zz%FF",
    b"http://h.example/x?y",
    b"*",
    b"/caf\xc3\xa9",
    b"/a\x7f",
    b"/a\x00",
    b"",
    b"/~!$&'()*+,;=:@",
]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.2", b"HTTPS/1.1", b"http/1.1", b"HTTP/1.1 ", b"HTTP/11"]
NAMES = [
    b"X-A",
    b"x-b",
    b"Accept",
    b"Cookie",
    b"Connection",
    b"Expect",
    b"Upgrade",
    b"X A",
    b"X-A ",
    b"",
    b"X\x00A",
    b"\xe9",
]
VALUES = [
    b"v",
    b"",
    b" padded\t",
    b"a, b",
    b"a\x00b",
    b"caf\xc3\xa9",
    b"close",
    b"keep-alive",
    b"upgrade",
    b"100-continue",
    b"websocket",
    b"a\tb",
    b"a;b=c",
]
LENGTHS = [b"0", b"3", b"+3", b"3, 3", b"-1", b"03", b" 3", b"x", b"18446744073709551615"]
ENCODINGS = [b"chunked", b"Chunked", b"identity", b"gzip, chunked", b"chunked, gzip", b" chunked", b""]
CHUNK_SIZES = [
    b"3",
    b"03",
    b"0x3",
    b"-3",
    b"3 ",
    b"3;ext=1",
    b'3;e="q"',
    b"3;\x01",
    b"g",
    b"",
    b"10000000000000003",
    b"0000000000000003",
]
EOLS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n"]


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        size = draw(st.sampled_from(CHUNK_SIZES))
        parts.append(size + draw(st.sampled_from(EOLS)) + b"abc" + draw(st.sampled_from(EOLS)))
    trailer = draw(st.sampled_from([b"", b"T: t\r\n", b"T: t\n", b" t\r\n"]))
    return b"".join(parts) + b"0" + draw(st.sampled_from(EOLS)) + trailer + draw(st.sampled_from(EOLS))


@st.composite
def request(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from(EOLS))
    sp = draw(st.sampled_from([b" "] * 8 + [b"  ", b"\t"]))
    line = draw(st.sampled_from(METHODS)) + sp + draw(st.sampled_from(TARGETS)) + b" " + draw(st.sampled_from(VERSIONS))
    headers = [b"Host: x"] * draw(st.sampled_from([1, 1, 1, 0, 2]))
    for _ in range(draw(st.integers(0, 4))):
        headers.append(
            draw(st.sampled_from(NAMES)) + draw(st.sampled_from([b": ", b":", b" : "])) + draw(st.sampled_from(VALUES))
        )
    if draw(st.booleans()):
        headers.append(b" folded")
    framing = draw(st.sampled_from(["none", "length", "chunked", "both", "two lengths", "two encodings"]))
    body = b""
    if framing in ("length", "both", "two lengths"):
        length = draw(st.sampled_from(LENGTHS))
        headers.extend([b"Content-Length: " + length] * (2 if framing == "two lengths" else 1))
        body = b"abc"
    if framing in ("chunked", "both", "two encodings"):
        for _ in range(2 if framing == "two encodings" else 1):
            headers.append(b"Transfer-Encoding: " + draw(st.sampled_from(ENCODINGS)))
        body = draw(chunked_body())
    headers = draw(st.permutations(headers))
    return draw(st.sampled_from([b"", b"\r\n"])) + eol.join([line, *headers, b""]) + eol + body


@st.composite
def connection(draw: st.DrawFn) -> list[bytes]:
    """One or two pipelined requests, cut into up to four pieces."""
    data = b"".join(draw(st.lists(request(), min_size=1, max_size=2)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds) if b > a]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connection())
def test_both_parsers_reach_the_same_verdict(pieces: list[bytes]) -> None:
    twisted = feed(GuardedHTTPChannel, pieces)
    llhttp = feed(httptools_channel, pieces)
    assert llhttp.statuses == twisted.statuses
    assert llhttp.seen == twisted.seen
    assert llhttp.closed == twisted.closed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(connection(), st.integers(1, 6), st.integers(20, 160))
def test_both_parsers_apply_the_header_limits_alike(pieces: list[bytes], count: int, size: int) -> None:
    """Tight ``max_header_count`` and ``max_header_bytes``: the same 400s and 431s at the same requests."""
    limits = {"max_header_count": count, "max_header_bytes": size}
    twisted = feed(GuardedHTTPChannel, pieces, **limits)
    llhttp = feed(httptools_channel, pieces, **limits)
    assert (llhttp.statuses, llhttp.seen, llhttp.closed) == (twisted.statuses, twisted.seen, twisted.closed)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
        [b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /q HTTP/1.1\r\nHost: y\r\n\r\n"],
        [b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: t\r\n\r\n"],
        [b"GET /", b" HTTP/1.1\r\nHo", b"st: x\r\n\r", b"\n"],
        [b"GET / HTTP/1.0\r\n\r\nGET /ignored HTTP/1.0\r\n\r\n"],
    ],
    ids=["get", "pipelined after a body", "chunked with extension and trailer", "cut anywhere", "http/1.0 closes"],
)
def test_well_formed_requests_are_read_alike(pieces: list[bytes]) -> None:
    twisted = feed(GuardedHTTPChannel, pieces)
    assert twisted.seen, "the example must be accepted"
    assert feed(httptools_channel, pieces) == twisted


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
    ],
    ids=["content-length beyond 64 bits", "DEL in a header value"],
)
def test_stricter_than_twisted_on_purpose(head: bytes) -> None:
    outcome = feed(httptools_channel, [head])
    assert (outcome.statuses, outcome.seen, outcome.closed) == ([400], [], True)
