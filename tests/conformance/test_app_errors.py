"""Checklist §3.7, assertions 45-57: invalid messages and failing apps.

For every violation: ``send`` raises (the probe records the exception), the
client gets a 500 if nothing was on the wire yet or a visibly truncated
response if something was, the server log names the violation (it contains
the very message ``send`` raised with), the connection is not reused, and
other connections -- one already waiting, one opened afterwards -- are served.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conformance.fronts import Front
from tests.conformance.rawhttp import Connection, Response
from tests.conformance.script import (
    RAISE,
    RETURN,
    Step,
    body,
    gate,
    probe_headers,
    receive_body,
    send,
    send_errors,
    start,
)

READ = receive_body()
OK = [start(200, [(b"content-length", b"2")]), body(b"ok")]


def assert_failed_visibly(response: Response | None) -> None:
    """A 500, or a response the client can tell is cut short (``None``: closed before any status line)."""
    if response is None or response.status == 500:
        return
    assert not response.complete or response.framing == "close", f"looks like a success: {response}"


@pytest.fixture
def bystander(front: Front) -> Iterator[Connection]:
    """A request on another connection, parked on a gate while the failure happens; must complete after."""
    name = f"bystander-{uuid.uuid4().hex}"  # gates stay open once released: one per test
    with Connection(front) as conn:
        conn.request("GET", "/bystander", probe_headers(name, READ, gate(name), *OK))
        front.wait_gate(name, name)
        yield conn
        front.release(name)
        response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok")
    with Connection(front) as fresh:
        fresh.request("GET", "/fresh", probe_headers("fresh", READ, *OK))
        assert fresh.read_response().status == 200


def fail(front: Front, rid: str, *steps: Step) -> tuple[Any, dict[str, Any], str, Connection]:
    """Run a failing script; return the response (None if closed before a status line), the record,
    the new log text and the connection."""
    mark = front.server.log_mark()
    conn = Connection(front)
    try:
        conn.request("GET", f"/{rid}", probe_headers(rid, READ, *steps))
        try:
            response: Response | None = conn.read_response()
        except ConnectionError:
            response = None
        record = front.wait_done(rid)
    except BaseException:
        conn.close()
        raise
    return response, record, front.server.log_since(mark), conn


INVALID_STARTS: dict[str, dict[str, Any]] = {
    "unknown-type": {"type": "http.response.bogus"},  # 45
    "str-header-name": {"type": "http.response.start", "status": 200, "headers": [("x-a", b"1")]},  # 46
    "str-header-value": {"type": "http.response.start", "status": 200, "headers": [(b"x-a", "1")]},  # 46
    "str-status": {"type": "http.response.start", "status": "200", "headers": []},  # 46
    "missing-status": {"type": "http.response.start", "headers": []},  # 46
    "pseudo-header": {"type": "http.response.start", "status": 200, "headers": [(b":status", b"200")]},  # 49
    "cr-lf-in-value": {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1\r\nx-injected: 1")]},
    "lf-in-value": {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1\nx-injected: 1")]},
    "nul-in-value": {"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1\x00")]},
    "cr-lf-in-name": {"type": "http.response.start", "status": 200, "headers": [(b"x-a\r\nx-injected", b"1")]},
    "space-in-name": {"type": "http.response.start", "status": 200, "headers": [(b"x a", b"1")]},
    "status-out-of-range": {"type": "http.response.start", "status": 1000, "headers": []},
    "informational-status": {"type": "http.response.start", "status": 103, "headers": []},  # §3.8: not final
}


HYPERCORN_ACCEPTS = {
    "str-status": "Hypercorn converts status with int(): '200' is accepted",
    "informational-status": "Hypercorn sends a 1xx status from http.response.start as an interim response",
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, marks=pytest.mark.hypercorn_gap(HYPERCORN_ACCEPTS[case]))
        if case in HYPERCORN_ACCEPTS
        else case
        for case in sorted(INVALID_STARTS)
    ],
)
def test_invalid_message_raises_and_gives_500(front: Front, bystander: Connection, case: str) -> None:
    """45, 46, 49 and the header-injection cases: send raises; the client gets a 500 with none of it; logged."""
    response, record, log, conn = fail(front, f"bad-{case}", send(INVALID_STARTS[case]), body(b"never"))
    with conn:
        [error] = send_errors(record)
        assert record["outcome"].startswith("raised")
        assert response.status == 500, response
        assert response.values("x-injected") == [] and response.values("x-a") == []
        assert error["message"] in log, f"the log does not name the violation {error['message']!r}"
        assert conn.is_closed_by_peer()  # 53: no further requests are read from it


def test_str_body_raises(front: Front, bystander: Connection) -> None:
    """47: a str body makes send raise; nothing of it reaches the client."""
    response, record, log, conn = fail(front, "bad-str-body", start(200), body("hi"))
    with conn:
        [error] = send_errors(record)
        assert error["type"] == "http.response.body"
        assert_failed_visibly(response)
        assert b"hi" not in response.body
        assert error["message"] in log
        assert conn.is_closed_by_peer()


def test_extra_keys_are_accepted(front: Front) -> None:
    """48: unknown extra keys in start and body are not errors."""
    steps = [
        send({"type": "http.response.start", "status": 200, "headers": [], "x-extra": 1}),
        send({"type": "http.response.body", "body": b"ok", "x-extra": 1}),
    ]
    with Connection(front) as conn:
        conn.request("GET", "/extra", probe_headers("extra", READ, *steps))
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"ok")


def test_start_twice_raises_and_one_status_line(front: Front, bystander: Connection) -> None:
    """50: a second start raises; the client never sees two status lines."""
    response, record, log, conn = fail(front, "twice", start(200), start(201), body(b"x"))
    with conn:
        [error] = send_errors(record)
        assert error["type"] == "http.response.start"
        assert_failed_visibly(response)
        assert error["message"] in log
        assert conn.is_closed_by_peer()  # and nothing after it: no second status line


def test_body_before_start_raises_and_gives_500(front: Front, bystander: Connection) -> None:
    """51: a body before start raises; the client gets a 500."""
    response, record, log, conn = fail(front, "body-first", body(b"early"), start(200))
    with conn:
        [error] = send_errors(record)
        assert error["type"] == "http.response.body"
        assert response.status == 500
        assert error["message"] in log
        assert conn.is_closed_by_peer()


def test_raise_before_start_gives_500_and_closes(front: Front, bystander: Connection) -> None:
    """52, 53: an exception before start: 500, the traceback in the log, the connection closed."""
    response, record, log, conn = fail(front, "raise-early", RAISE)
    with conn:
        assert record["outcome"] == "raised ProbeError"
        assert response.status == 500
        assert b"ProbeError" not in response.body and b"Traceback" not in response.body
        assert "the script said raise" in log and "Traceback" in log
        assert conn.is_closed_by_peer()


def test_return_without_start_gives_500(front: Front, bystander: Connection) -> None:
    """54: an app that returns without responding: 500."""
    response, record, _, conn = fail(front, "silent", RETURN)
    with conn:
        assert record["outcome"] == "returned"
        assert response.status == 500
        assert conn.is_closed_by_peer()


def test_raise_after_start_truncates_the_chunked_body(front: Front, bystander: Connection) -> None:
    """55: an exception after a partial chunked body: the connection closes with no final 0-chunk."""
    response, _, log, conn = fail(front, "raise-late", start(200), body(b"partial", more=True), RAISE)
    with conn:
        assert response.status == 200
        assert response.framing == "chunked"
        assert response.body == b"partial"
        assert not response.complete
        assert "the script said raise" in log


def test_return_mid_body_truncates(front: Front, bystander: Connection) -> None:
    """56: an app that returns after a partial body: the connection closes, the response visibly truncated."""
    response, record, _, conn = fail(front, "return-late", start(200), body(b"partial", more=True), RETURN)
    with conn:
        assert record["outcome"] == "returned"
        assert response.status == 200
        assert response.body == b"partial"
        assert not response.complete


def test_raise_after_the_response_keeps_the_response(front: Front, bystander: Connection) -> None:
    """An exception after a complete response: the client has its response; the exception is logged."""
    response, record, log, conn = fail(front, "raise-after", *OK, RAISE)
    with conn:
        assert (response.status, response.body) == (200, b"ok")
        assert record["outcome"] == "raised ProbeError"
        assert "the script said raise" in log


def test_pathsend_of_a_missing_file_fails_visibly(front: Front, bystander: Connection) -> None:
    """An unreadable pathsend target (or an unadvertised pathsend): a 500 or a cut-short response, never a hang."""
    steps = [
        start(200, [(b"content-length", b"10")]),
        send({"type": "http.response.pathsend", "path": "/nonexistent/f"}),
    ]
    response, record, log, conn = fail(front, "pathsend-missing", *steps)
    with conn:
        [error] = send_errors(record)
        assert_failed_visibly(response)
        assert error["message"] in log
