"""Checklist §3.1, assertions 22-25, and the issue's body rules: streaming, 413, 100-continue.

Flow control (an app that stops reading stalls the upload) and the big
memory proofs live in ``test_streaming.py``.
"""

from __future__ import annotations

import hashlib
import os
import select
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conformance import wire
from tests.conformance.fronts import DEADLINE, Front, wait_for
from tests.conformance.rawhttp import Connection
from tests.conformance.script import RECEIVE, REPLY, probe_headers


def body_summary(record: dict[str, Any]) -> dict[str, Any]:
    summaries = [s for s in record["steps"] if s["op"] == "receive_body"]
    assert len(summaries) == 1, record["steps"]
    summary: dict[str, Any] = summaries[0]
    return summary


def assert_body_delivered(record: dict[str, Any], expected: bytes) -> None:
    """The http.request bodies concatenate to ``expected``; all bytes; only the last has more_body False."""
    summary = body_summary(record)
    assert record["received_bytes"] == len(expected)
    assert summary["sha256"] == hashlib.sha256(expected).hexdigest()
    assert summary["body_types"] in ([], ["bytes"])
    assert summary["final_at"] == [record["received_messages"] - 1]
    assert summary["types"] == []  # no http.disconnect in the middle


def test_get_without_body_gets_one_empty_request_message(front: Front) -> None:
    """22: the first receive() is http.request with an empty body and more_body False."""
    response = front.get("/b22", "b22", RECEIVE, REPLY)
    message = wire.loads(response.content)["steps"][0]["message"]
    assert message["type"] == "http.request"
    assert message.get("body", b"") == b""
    assert message.get("more_body", False) is False


def test_content_length_body(front: Front) -> None:
    """23: Content-Length: 11 'hello world' arrives whole, as bytes, last message final."""
    with Connection(front) as conn:
        conn.request("POST", "/b23", {**probe_headers("b23"), "Content-Length": "11"}, b"hello world")
        record = wire.loads(conn.read_response().body)
    assert_body_delivered(record, b"hello world")


def test_chunked_body_is_dechunked(front: Front) -> None:
    """24: chunks 'hello', ' ', 'world' reach the app as 'hello world', no chunk-size lines."""
    with Connection(front) as conn:
        conn.request("POST", "/b24", {**probe_headers("b24"), "Transfer-Encoding": "chunked"})
        conn.send(b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        record = wire.loads(conn.read_response().body)
    assert_body_delivered(record, b"hello world")
    assert [b"transfer-encoding", b"chunked"] in record["scope"]["headers"]


def test_five_mib_body_intact(front: Front) -> None:
    """25: a 5 MiB body arrives byte for byte (length and SHA-256)."""
    data = os.urandom(5 * 1024 * 1024)
    response = httpx.post(front.url("/b25"), headers=probe_headers("b25"), content=data, timeout=DEADLINE)
    assert_body_delivered(wire.loads(response.content), data)


def test_body_streams_to_the_app_before_the_upload_ends(front: Front) -> None:
    """The app gets its first http.request (more_body True) while the client is still uploading."""
    first, rest = os.urandom(1024 * 1024), os.urandom(1024 * 1024)
    with Connection(front) as conn:
        conn.request(
            "POST", "/stream-up", {**probe_headers("up"), "Content-Length": str(len(first) + len(rest))}, first
        )
        early = front.wait_record("up", lambda r: r["received_bytes"] > 0, "the first body bytes to reach the app")
        assert not early["done"]
        conn.send(rest)
        record = wire.loads(conn.read_response().body)
    assert_body_delivered(record, first + rest)
    assert record["received_messages"] >= 2


def test_chunked_body_streams_to_the_app_before_the_upload_ends(front: Front) -> None:
    """The same for a chunked upload: more_body is True until the terminating chunk."""
    with Connection(front) as conn:
        conn.request("POST", "/stream-up-chunked", {**probe_headers("up-chunked"), "Transfer-Encoding": "chunked"})
        conn.send(b"5\r\nhello\r\n")
        early = front.wait_record("up-chunked", lambda r: r["received_bytes"] == 5, "the first chunk to reach the app")
        assert not early["done"]
        conn.send(b"6\r\n world\r\n0\r\n\r\n")
        record = wire.loads(conn.read_response().body)
    assert_body_delivered(record, b"hello world")


def test_expect_100_continue(front: Front) -> None:
    """Expect: 100-continue gets a 100 before the client sends the body; the body then arrives."""
    with Connection(front) as conn:
        headers = {**probe_headers("b100"), "Content-Length": "11", "Expect": "100-continue"}
        conn.request("POST", "/b100", headers)
        interim = conn.read_head()
        assert interim.status == 100
        conn.send(b"hello world")
        record = wire.loads(conn.read_response().body)
    assert_body_delivered(record, b"hello world")


# -- maximum body size: 413 without reading the rest -------------------------------------------

LIMIT = 1024 * 1024  # serve_bridge.MAX_BODY_SIZE


def wait_answer_or_app(conn: Connection, front: Front, rid: str, app_got: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the server answers, or the app got what it should not (then fail at once)."""

    def answered_or_app_got() -> bool:
        readable, _, _ = select.select([conn.sock], [], [], 0.05)
        if readable:
            return True
        try:
            record = front.record(rid)
        except httpx.HTTPStatusError:
            return False  # the app has not been called
        return app_got(record)

    wait_for(answered_or_app_got, "a response, or the app being handed the request")
    assert select.select([conn.sock], [], [], 0)[0], f"the app was handed too much: {front.record(rid)}"


@pytest.mark.hypercorn_gap("Hypercorn has no request body size limit")
def test_declared_length_over_limit_gets_413_before_any_body(limited_front: Front) -> None:
    """Content-Length above the limit: 413 at once, the app never called, the connection closed."""
    with Connection(limited_front) as conn:
        conn.request("POST", "/big", {**probe_headers("too-big"), "Content-Length": str(8 * LIMIT)})
        wait_answer_or_app(conn, limited_front, "too-big", lambda record: True)
        response = conn.read_response()
        assert response.status == 413
        assert conn.is_closed_by_peer()
    with pytest.raises(httpx.HTTPStatusError):
        limited_front.record("too-big")  # 404: the app was never called


@pytest.mark.hypercorn_gap("Hypercorn has no request body size limit")
def test_declared_length_over_limit_with_expect_gets_413_and_no_100(limited_front: Front) -> None:
    """With Expect: 100-continue and a body over the limit, the client is told 413, not invited to send."""
    with Connection(limited_front) as conn:
        headers = {**probe_headers("too-big-100"), "Content-Length": str(8 * LIMIT), "Expect": "100-continue"}
        conn.request("POST", "/big", headers)
        wait_answer_or_app(conn, limited_front, "too-big-100", lambda record: True)
        assert conn.read_head().status == 413


@pytest.mark.hypercorn_gap("Hypercorn has no request body size limit")
def test_chunked_body_over_limit_gets_413_without_reading_the_rest(limited_front: Front) -> None:
    """A chunked upload that passes the limit is answered 413 while the client is still sending."""
    block = b"x" * 65536
    chunk = b"%x\r\n%s\r\n" % (len(block), block)
    with Connection(limited_front) as conn:
        conn.request("POST", "/big", {**probe_headers("too-big-chunked"), "Transfer-Encoding": "chunked"})
        conn.send(chunk * (LIMIT // len(block) + 2))  # past the limit; never the final 0 chunk
        wait_answer_or_app(conn, limited_front, "too-big-chunked", lambda record: record["received_bytes"] > LIMIT)
        response = conn.read_response()
        assert response.status == 413
        assert conn.is_closed_by_peer()
    record = limited_front.wait_done("too-big-chunked")
    assert record["received_bytes"] <= LIMIT + len(block)
