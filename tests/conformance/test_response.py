"""Checklist §3.3-3.5 and 3.8, assertions 26-37, 58, 59: what reaches the wire.

All over raw sockets: order, duplicates, framing and stray bytes are exactly
what httpx would hide.  Each test ends by proving the connection is still
in a sane state: a second request on it gets a clean response (or the
connection is closed, where the framing requires it).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conformance.fronts import Front
from tests.conformance.rawhttp import Connection, Response
from tests.conformance.script import Step, body, gate, probe_headers, receive_body, send, send_errors, start

READ = receive_body()
OK = [start(200, [(b"content-length", b"2")]), body(b"ok")]


def exchange(front: Front, rid: str, *steps: Step, method: str = "GET", version: str = "HTTP/1.1") -> Response:
    """One request scripted with ``steps``, on a fresh connection that is then checked for reuse."""
    with Connection(front) as conn:
        conn.request(method, f"/{rid}", probe_headers(rid, READ, *steps), version=version)
        response = conn.read_response(method)
        if version == "HTTP/1.1" and response.framing != "close" and response.value("connection") != b"close":
            assert_reusable(conn)
    return response


def assert_reusable(conn: Connection) -> None:
    """Nothing stray after the response, and the next request on the connection is answered cleanly."""
    conn.request("GET", "/next", probe_headers("next", READ, start(200, [(b"content-length", b"2")]), body(b"ok")))
    response = conn.read_response()
    assert (response.status, response.body) == (200, b"ok")
    assert conn.leftover == b""


def test_status_header_and_body(front: Front) -> None:
    """26: status 201, the app's content-type and body 'hi'."""
    response = exchange(front, "r26", start(201, [(b"content-type", b"text/plain")]), body(b"hi"))
    assert response.status == 201
    assert response.value("content-type") == b"text/plain"
    assert response.body == b"hi"


def test_response_header_order_and_duplicates(front: Front) -> None:
    """27, 28: x-a 1 and 3 stay separate lines in order; two Set-Cookie lines are never joined."""
    headers = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    response = exchange(front, "r27", start(200, headers), body(b""))
    assert response.values("x-a") == [b"1", b"3"]
    assert response.values("x-b") == [b"2"]
    assert response.values("set-cookie") == [b"a=1", b"b=2"]


def test_defaults_for_headers_and_body(front: Front) -> None:
    """29: start without ``headers`` and body without ``body`` make a valid empty response."""
    response = exchange(
        front, "r29", send({"type": "http.response.start", "status": 202}), send({"type": "http.response.body"})
    )
    assert response.status == 202
    assert response.body == b""
    assert response.complete


def test_body_in_pieces(front: Front) -> None:
    """30: 'a', 'b' (more_body) then 'c' (final) arrive as 'abc', complete."""
    response = exchange(front, "r30", start(200), body(b"a", more=True), body(b"b", more=True), body(b"c"))
    assert response.body == b"abc"
    assert response.complete


def test_http11_without_content_length_is_framed(front: Front) -> None:
    """31: no content-length on HTTP/1.1: a complete body, chunked (keeps the connection) or close-delimited."""
    response = exchange(front, "r31", start(200), body(b"part1-", more=True), body(b"part2"))
    assert response.body == b"part1-part2"
    assert response.complete
    assert response.framing in ("chunked", "close")


def test_http10_is_never_chunked(front: Front) -> None:
    """32: an HTTP/1.0 client gets no chunked encoding: the body is close-delimited (or length-framed) and intact."""
    response = exchange(front, "r32", start(200), body(b"part1-", more=True), body(b"part2"), version="HTTP/1.0")
    assert response.values("transfer-encoding") == []
    assert response.framing in ("close", "length")
    assert response.body == b"part1-part2"


def test_app_transfer_encoding_is_ignored(front: Front) -> None:
    """33: the app's transfer-encoding is ignored: exactly one framing on the wire, body 'hello'."""
    headers = [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")]
    response = exchange(front, "r33", start(200, headers), body(b"hello"))
    framings = len(response.values("transfer-encoding")) + len(response.values("content-length"))
    assert framings == 1, response.headers
    assert response.body == b"hello"


def test_content_length_from_the_app(front: Front) -> None:
    """34: content-length 5 and 'hello': Content-Length: 5 and no Transfer-Encoding."""
    response = exchange(front, "r34", start(200, [(b"content-length", b"5")]), body(b"hello"))
    assert response.values("content-length") == [b"5"]
    assert response.values("transfer-encoding") == []
    assert response.body == b"hello"


def test_body_short_of_content_length_closes_the_connection(front: Front) -> None:
    """§3.5: an app that declares more than it sends: the client sees a short body and a closed connection."""
    with Connection(front) as conn:
        conn.request(
            "GET", "/short", probe_headers("short", READ, start(200, [(b"content-length", b"10")]), body(b"12345"))
        )
        response = conn.read_response()
        assert response.body == b"12345"
        assert not response.complete


def test_body_beyond_content_length_never_reaches_the_wire(front: Front) -> None:
    """§3.5: bytes beyond the declared content-length make send() raise; the client never gets them."""
    steps = [READ, start(200, [(b"content-length", b"5")]), body(b"hel", more=True), body(b"lo world")]
    with Connection(front) as conn:
        conn.request("GET", "/long", probe_headers("long", *steps))
        response = conn.read_response()
        assert b"world" not in response.body + conn.leftover
        assert not response.complete or conn.is_closed_by_peer()
    assert send_errors(front.wait_done("long"))


def test_streamed_chunk_is_flushed_before_send_returns(front: Front) -> None:
    """35: a more_body chunk reaches the client while the app waits on a gate after sending it."""
    steps = [READ, start(200), body(b"early", more=True), gate("g35"), body(b"late")]
    with Connection(front) as conn:
        conn.request("GET", "/r35", probe_headers("r35", *steps))
        head = conn.read_head()
        assert head.status == 200
        conn.wait_for_bytes(b"early")  # the chunk framing around it is not the point here
        assert front.record("r35")["waiting"] == "g35"
        front.release("g35")


def test_messages_after_the_response_are_ignored(front: Front) -> None:
    """36: a body sent after the response completed puts nothing on the wire; the connection still works."""
    steps = [READ, start(200, [(b"content-length", b"2")]), body(b"ok"), body(b"EXTRA", catch=True)]
    with Connection(front) as conn:
        conn.request("GET", "/r36", probe_headers("r36", *steps))
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok")
        front.wait_done("r36")  # the extra body has been sent (and ignored, or refused)
        assert_reusable(conn)


def test_no_content_type_is_added(front: Front) -> None:
    """37: a response without content-type gets none from the server (Twisted would add text/html)."""
    response = exchange(front, "r37", start(200, [(b"content-length", b"2")]), body(b"ok"))
    assert response.values("content-type") == []


def test_head_keeps_content_length_and_drops_the_body(front: Front) -> None:
    """58: HEAD with the app sending 'hello' and content-length 5: Content-Length: 5, no body, connection reusable."""
    response = exchange(front, "r58", start(200, [(b"content-length", b"5")]), body(b"hello"), method="HEAD")
    assert response.status == 200
    assert response.values("content-length") == [b"5"]


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_for_204_and_304(front: Front, status: int) -> None:
    """59: 204 and 304 never carry body bytes, whatever the app sends."""
    response = exchange(front, f"r59-{status}", start(status), body(b"not allowed"))
    assert response.status == status
    assert response.body == b""


def request_bytes(front: Front, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"GET {front.target(path)} HTTP/1.1", f"Host: {front.host}:{front.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def test_pipelined_requests_are_answered_in_order(front: Front) -> None:
    """Three requests in one write, the first held on a gate: three responses, in request order."""
    name = f"pipe-{uuid.uuid4().hex}"
    first = [READ, gate(name), start(200, [(b"content-length", b"5")]), body(b"first")]
    later = [[READ, start(200, [(b"content-length", b"5")]), body(word)] for word in (b"secnd", b"third")]
    with Connection(front) as conn:
        conn.send(
            request_bytes(front, "/p1", probe_headers(f"{name}-1", *first))
            + request_bytes(front, "/p2", probe_headers(f"{name}-2", *later[0]))
            + request_bytes(front, "/p3", probe_headers(f"{name}-3", *later[1]))
        )
        front.wait_gate(f"{name}-1", name)
        front.release(name)
        assert [conn.read_response().body for _ in range(3)] == [b"first", b"secnd", b"third"]


def test_unread_request_body_is_never_parsed_as_a_request(front: Front) -> None:
    """An app that answers without reading the body: the body is skipped or the connection closed, never run."""
    smuggled = f"smuggled-{uuid.uuid4().hex}"
    inner = request_bytes(front, "/smuggled", probe_headers(smuggled))
    headers = {**probe_headers("unread", *OK), "Content-Length": str(len(inner))}
    with Connection(front) as conn:
        conn.send(request_bytes(front, "/unread", headers, inner))
        assert conn.read_response().body == b"ok"
        front.wait_done("unread")
        try:
            conn.request("GET", "/after-unread", probe_headers("after-unread", READ, *OK))
            second: Response | None = conn.read_response()
        except ConnectionError:
            second = None  # closed after the first response: the body was never parsed either
        assert second is None or second.body == b"ok"
    with pytest.raises(httpx.HTTPStatusError):
        front.record(smuggled)
