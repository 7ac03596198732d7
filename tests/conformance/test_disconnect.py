"""Checklist §3.2 and 3.6, assertions 38-44: disconnects, and nothing left behind after them.

"Nothing left behind" is counted, not assumed: the probe's ``stats`` control
endpoint reports the server's asyncio tasks and timer handles (and, on the
bridge, ``reactor.getDelayedCalls()`` and requests in flight); after each
disconnect those counts must come back to what they were before.
"""

from __future__ import annotations

import socket
import struct

import pytest

from tests.conformance.fronts import Front, wait_for
from tests.conformance.rawhttp import Connection
from tests.conformance.script import (
    RECEIVE,
    body,
    gate,
    probe_headers,
    receive_body,
    receive_until_gate,
    send_errors,
    start,
    stream,
)

READ = receive_body()
#: serve_bridge.DISCONNECT_GRACE
DISCONNECT_GRACE = 1.0


def received(record: dict[str, object]) -> list[str]:
    """Types of the messages the app's plain ``receive`` steps got, in order."""
    steps = record["steps"]
    assert isinstance(steps, list)
    return [s["message"]["type"] for s in steps if s["op"] in ("receive", "receive_until_gate")]


def hang_up(conn: Connection) -> None:
    """Close with RST (SO_LINGER 0): the server sees the loss at once, whatever is unread."""
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def assert_back_to_baseline(front: Front, baseline: dict[str, int]) -> None:
    """Every count returns to (at most) its value before the request."""

    def settled() -> bool:
        now = front.stats()
        return all(now[k] <= baseline[k] for k in baseline)

    try:
        wait_for(settled, "tasks, timers and delayed calls to return to their baseline")
    except AssertionError as e:
        raise AssertionError(f"{e}: before {baseline}, now {front.stats()}") from None


def test_receive_after_the_response_is_disconnect(front: Front) -> None:
    """38: after a complete response, receive() returns http.disconnect."""
    with Connection(front) as conn:
        conn.request("GET", "/d38", probe_headers("d38", READ, start(200), body(b"done"), RECEIVE))
        assert conn.read_response().body == b"done"
        record = front.wait_done("d38")
    assert received(record) == ["http.disconnect"]


def test_client_close_wakes_a_waiting_receive(front: Front) -> None:
    """39: the client closes while the app (body read, no response) awaits receive(): http.disconnect."""
    with Connection(front) as conn:
        conn.request("GET", "/d39", probe_headers("d39", READ, RECEIVE))
        front.wait_record("d39", lambda r: r["waiting"] == "receive", "the app to wait in receive()")
    assert received(front.wait_done("d39")) == ["http.disconnect"]


@pytest.mark.hypercorn_gap("Hypercorn queues http.disconnect once; a second receive() blocks forever")
def test_disconnect_is_repeated(front: Front) -> None:
    """40: every receive() after http.disconnect returns http.disconnect again, at once."""
    with Connection(front) as conn:
        conn.request("GET", "/d40", probe_headers("d40", READ, RECEIVE, receive_until_gate("g40", give_up=True)))
        front.wait_record("d40", lambda r: r["waiting"] == "receive", "the app to wait in receive()")
    front.wait_record("d40", lambda r: len(r["steps"]) >= 2, "the first http.disconnect")
    front.release("g40")
    record = front.wait_done("d40")
    assert record["steps"][-1]["blocked"] is False, "the second receive() blocked"
    assert received(record) == ["http.disconnect", "http.disconnect"]


def test_client_gone_mid_upload_is_a_disconnect(front: Front) -> None:
    """§3.2: a client that leaves halfway through its body: the app gets http.disconnect, never a final body."""
    with Connection(front) as conn:
        conn.request("POST", "/d-up", {**probe_headers("d-up"), "Content-Length": str(1024 * 1024)}, b"x" * 10000)
        front.wait_record("d-up", lambda r: r["received_bytes"] == 10000, "the first part of the body")
        hang_up(conn)
    summary = front.wait_done("d-up")["steps"][0]
    assert summary["types"] == ["http.disconnect"]
    assert summary["final_at"] == []


def test_receive_blocks_until_the_client_leaves(front: Front) -> None:
    """41: body consumed, no response, client connected: receive() stays blocked (a gate opens first)."""
    with Connection(front) as conn:
        conn.request("GET", "/d41", probe_headers("d41", READ, receive_until_gate("g41")))
        front.wait_record("d41", lambda r: r["received_messages"] == 1, "the body to be read")
        front.release("g41")
        front.wait_record("d41", lambda r: r["waiting"] == "receive", "the gate to open, receive() still pending")
    record = front.wait_done("d41")
    step = record["steps"][-1]
    assert step["blocked"] is True
    assert step["message"]["type"] == "http.disconnect"


@pytest.mark.hypercorn_gap("Hypercorn 0.18 implements spec 2.1: send() after a disconnect is a silent no-op")
def test_send_after_disconnect_raises_oserror(front: Front) -> None:
    """42, 43: once the client has gone, send() raises an OSError subclass, promptly."""
    steps = [READ, RECEIVE, start(200, catch=True), body(b"too late", catch=True)]
    with Connection(front) as conn:
        conn.request("GET", "/d42", probe_headers("d42", *steps))
        front.wait_record("d42", lambda r: r["waiting"] == "receive", "the app to wait in receive()")
    record = front.wait_done("d42")
    assert received(record) == ["http.disconnect"]
    errors = send_errors(record)
    assert errors, f"send() after the disconnect did not raise: {record['steps']}"
    assert errors[0]["oserror"] is True, errors[0]


def test_blocked_send_returns_when_the_client_leaves(front: Front) -> None:
    """43: a send() held by flow control (client not reading) returns or raises once the client hangs up."""
    with Connection(front) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        conn.request("GET", "/d43", probe_headers("d43", READ, stream(65536, 4096, catch=True)))
        front.wait_record("d43", lambda r: r["sent_chunks"] > 0, "the response to start streaming")
        hang_up(conn)
    assert front.wait_done("d43")["outcome"] == "returned"


def test_propagated_oserror_is_not_logged_as_an_error(front: Front) -> None:
    """44: an app that lets the disconnect OSError escape gets no error traceback in the log; serving goes on."""
    mark = front.server.log_mark()
    with Connection(front) as conn:
        conn.request("GET", "/d44", probe_headers("d44", READ, RECEIVE, start(200), body(b"too late")))
        front.wait_record("d44", lambda r: r["waiting"] == "receive", "the app to wait in receive()")
    front.wait_done("d44")
    log = front.server.log_since(mark)
    assert "Traceback" not in log, log
    assert front.get("/after", "d44-after").status_code == 200


def test_disconnect_leaves_nothing_behind(front: Front) -> None:
    """The app hears http.disconnect, its send raises, it returns: every count returns to its baseline."""
    baseline = front.stats()
    steps = [READ, start(200), body(b"first", more=True), RECEIVE, body(b"second", more=True, catch=True)]
    with Connection(front) as conn:
        conn.request("GET", "/gone", probe_headers("gone", *steps))
        conn.read_head()
        conn.wait_for_bytes(b"first")
        front.wait_record("gone", lambda r: r["waiting"] == "receive", "the app to wait in receive()")
    record = front.wait_done("gone")
    assert received(record) == ["http.disconnect"]
    assert record["outcome"] == "returned"
    assert_back_to_baseline(front, baseline)


@pytest.mark.hypercorn_gap("Hypercorn never cancels an app that ignores http.disconnect")
def test_app_that_ignores_the_disconnect_is_cancelled(front: Front) -> None:
    """An app stuck on something else when the client leaves is cancelled after a grace period; nothing remains.

    The bridge under test runs with ``disconnect_grace=1.0`` (serve_bridge.py).
    """
    baseline = front.stats()
    try:
        with Connection(front) as conn:
            conn.request(
                "GET", "/stuck", probe_headers("stuck", READ, start(200), body(b"x", more=True), gate("stuck"))
            )
            conn.wait_for_bytes(b"x")
            front.wait_gate("stuck", "stuck")
        record = front.wait_done("stuck", deadline=5 * DISCONNECT_GRACE)
        assert record["outcome"] == "raised CancelledError"
        assert_back_to_baseline(front, baseline)
    finally:
        front.release("stuck")  # a server that did not cancel it must not keep it forever
