"""The sans-IO HTTP cycle, driven with plain dicts (no Twisted, no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge._http_cycle import (
    AbortConnection,
    FinishResponse,
    HTTPCycle,
    ResponseState,
    SendFile,
    StartResponse,
    WriteBody,
)
from bridge.errors import ASGIProtocolError


def start(status: int = 200, headers: Any = None, **kw: Any) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or [], **kw}


def body(data: bytes = b"", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_start_is_held_until_first_body() -> None:
    cycle = HTTPCycle("GET")
    assert cycle.app_send(start(201, [(b"content-type", b"text/plain")])) == []
    assert cycle.state is ResponseState.HEADERS_HELD
    actions = cycle.app_send(body(b"hi"))
    assert actions == [
        StartResponse(201, [(b"content-type", b"text/plain"), (b"content-length", b"2")]),
        WriteBody(b"hi"),
        FinishResponse(),
    ]
    assert cycle.state in {ResponseState.DONE}  # a set: mypy keeps the earlier narrowing otherwise


def test_streamed_body_is_not_given_a_length() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    assert cycle.app_send(body(b"a", more=True)) == [StartResponse(200, []), WriteBody(b"a")]
    assert cycle.app_send(body(b"b", more=True)) == [WriteBody(b"b")]
    assert cycle.app_send(body(b"c")) == [WriteBody(b"c"), FinishResponse()]


def test_empty_first_chunk_still_sends_the_headers() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200, [(b"content-type", b"text/event-stream")]))
    assert cycle.app_send(body(b"", more=True)) == [
        StartResponse(200, [(b"content-type", b"text/event-stream")]),
        WriteBody(b""),
    ]
    assert cycle.app_send(body(b"", more=True)) == []


def test_app_transfer_encoding_is_ignored_and_declared_length_kept() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200, [(b"transfer-encoding", b"chunked"), (b"content-length", b"5")]))
    actions = cycle.app_send(body(b"hello"))
    assert actions[0] == StartResponse(200, [(b"content-length", b"5")])


def test_head_drops_body_keeps_content_length() -> None:
    cycle = HTTPCycle("HEAD")
    cycle.app_send(start(200, [(b"content-length", b"5")]))
    assert cycle.app_send(body(b"hello")) == [StartResponse(200, [(b"content-length", b"5")]), FinishResponse()]


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_write_nothing(status: int) -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(status))
    assert cycle.app_send(body(b"nope")) == [StartResponse(status, []), FinishResponse()]


def test_messages_after_completion_are_ignored() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    cycle.app_send(body(b"x"))
    assert cycle.app_send(body(b"late")) == []


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.response.bogus"},
        {"type": "http.response.trailers", "headers": []},
        start("200"),  # type: ignore[arg-type]
        {"type": "http.response.start"},
        start(101),
        start(200, [("x-a", b"1")]),
        start(200, [(b"x-a", "1")]),
        start(200, [(b"x-a", b"1\r\nset-cookie: pwn=1")]),
        start(200, [(b"x-a", b"1\x00")]),
        start(200, [(b":status", b"200")]),
        start(200, [(b"bad name", b"1")]),
        start(200, [(b"content-length", b"abc")]),
        start(200, trailers=True),
    ],
)
def test_invalid_start_or_type_raises(message: dict[str, Any]) -> None:
    with pytest.raises(ASGIProtocolError):
        HTTPCycle("GET").app_send(message)


def test_body_before_start_raises() -> None:
    with pytest.raises(ASGIProtocolError, match=r"before http\.response\.start"):
        HTTPCycle("GET").app_send(body(b"x"))


def test_start_twice_raises() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    with pytest.raises(ASGIProtocolError, match="twice"):
        cycle.app_send(start())


def test_str_body_raises() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    with pytest.raises(ASGIProtocolError, match="must be bytes"):
        cycle.app_send({"type": "http.response.body", "body": "text"})


def test_extra_keys_are_accepted() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send({**start(), "x-extra": 1})
    assert cycle.app_send({**body(b"ok"), "x-extra": 1})[-1] == FinishResponse()


def test_more_bytes_than_declared_raises_and_failure_becomes_500() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200, [(b"content-length", b"2")]))
    with pytest.raises(ASGIProtocolError, match="exceed"):
        cycle.app_send(body(b"toolong"))
    actions = cycle.app_failed("the app raised ASGIProtocolError")
    assert isinstance(actions[0], StartResponse) and actions[0].status == 500


def test_fewer_bytes_than_declared_closes_after_response() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200, [(b"content-length", b"10")]))
    assert cycle.app_send(body(b"short"))[-1] == FinishResponse(close=True)


def test_failure_before_start_is_a_clean_500_that_closes() -> None:
    actions = HTTPCycle("GET").app_failed("boom")
    head, write, finish = actions
    assert isinstance(head, StartResponse) and head.status == 500 and head.close
    assert isinstance(write, WriteBody) and b"Traceback" not in write.data
    assert finish == FinishResponse(close=True)


def test_failure_with_headers_held_is_still_a_500() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200))
    assert cycle.app_failed("boom")[0] == StartResponse(
        500,
        [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"22"),
            (b"connection", b"close"),
        ],
        close=True,
    )


def test_failure_after_body_started_aborts() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    cycle.app_send(body(b"partial", more=True))
    actions = cycle.app_failed("boom")
    assert len(actions) == 1 and isinstance(actions[0], AbortConnection)


def test_return_without_response_is_a_500_and_partial_body_aborts() -> None:
    assert HTTPCycle("GET").app_returned()[0].status == 500  # type: ignore[union-attr]
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    cycle.app_send(body(b"partial", more=True))
    assert isinstance(cycle.app_returned()[0], AbortConnection)


def test_completed_response_then_return_does_nothing() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start())
    cycle.app_send(body(b"x"))
    assert cycle.app_returned() == []
    assert cycle.app_failed("late") == []


def test_failure_after_client_left_writes_nothing() -> None:
    cycle = HTTPCycle("GET")
    cycle.client_disconnected()
    assert cycle.app_failed("gone") == []


def test_pathsend() -> None:
    cycle = HTTPCycle("GET")
    cycle.app_send(start(200, [(b"content-length", b"3")]))
    assert cycle.app_send({"type": "http.response.pathsend", "path": "/etc/hostname"}) == [
        StartResponse(200, [(b"content-length", b"3")]),
        SendFile("/etc/hostname"),
    ]
    with pytest.raises(ASGIProtocolError):
        HTTPCycle("GET", pathsend=False).app_send({"type": "http.response.pathsend", "path": "/x"})
    relative = HTTPCycle("GET")
    relative.app_send(start())
    with pytest.raises(ASGIProtocolError, match="absolute"):
        relative.app_send({"type": "http.response.pathsend", "path": "x"})


def test_reject_413_before_start_and_abort_after() -> None:
    assert HTTPCycle("POST").reject(413)[0].status == 413  # type: ignore[union-attr]
    cycle = HTTPCycle("POST")
    cycle.app_send(start())
    cycle.app_send(body(b"x", more=True))
    assert isinstance(cycle.reject(413)[0], AbortConnection)


# -- request side ---------------------------------------------------------------


def test_receive_without_body_is_one_empty_request_then_blocks() -> None:
    cycle = HTTPCycle("GET")
    cycle.body_finished()
    assert cycle.next_receive() == {"type": "http.request", "body": b"", "more_body": False}
    assert cycle.next_receive() is None  # blocks until response done or disconnect


def test_body_chunks_coalesce_and_more_body_flags() -> None:
    cycle = HTTPCycle("POST")
    for byte in b"hello":
        cycle.body_received(bytes([byte]))
    assert cycle.buffered == 5
    assert cycle.next_receive() == {"type": "http.request", "body": b"hello", "more_body": True}
    assert cycle.buffered == 0
    assert cycle.next_receive() is None
    cycle.body_received(b" world")
    cycle.body_finished()
    assert cycle.next_receive() == {"type": "http.request", "body": b" world", "more_body": False}
    assert cycle.next_receive() is None


def test_disconnect_after_response_and_repeatedly() -> None:
    cycle = HTTPCycle("GET")
    cycle.body_finished()
    cycle.next_receive()
    cycle.app_send(start())
    cycle.app_send(body(b"x"))
    assert cycle.next_receive() == {"type": "http.disconnect"}
    assert cycle.next_receive() == {"type": "http.disconnect"}


def test_disconnect_preempts_pending_body() -> None:
    cycle = HTTPCycle("POST")
    cycle.body_received(b"partial")
    cycle.client_disconnected()
    assert cycle.next_receive() == {"type": "http.disconnect"}
