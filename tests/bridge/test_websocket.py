"""ASGI WebSockets through ASGIResource over real sockets (asgi-checklist section 4).

One ``ws_server.py`` process serves the module.  The instrumented app reports what it saw
through ``/ws/log`` (which waits server-side until the connection's app call ended), so no test
sleeps.  ``websockets`` drives the ordinary cases; wsproto on a raw socket the wire-level ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from tests.bridge.ws_helpers import (
    RawClient,
    app_log,
    new_id,
    raw_http,
    received,
    send_errors,
    upgrade_request,
)
from tests.servers import RunningServer, run_server

HERE = Path(__file__).parent
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "ws_server.py")]) as running:
        yield running


def ws_url(server: RunningServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def open_ws(server: RunningServer, path: str, **kwargs: Any) -> ClientConnection:
    return connect(ws_url(server, path), open_timeout=30, close_timeout=30, **kwargs)


def closed_by_server(ws: ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=30)
    return info.value


# ---- scope and handshake ----------------------------------------------------------


def test_scope_of_an_upgrade_and_connect_first(server: RunningServer) -> None:
    """Assertions 60, 62, and lifespan state shared with websocket scopes (shallow copies)."""
    first, second = new_id(), new_id()
    with open_ws(server, f"/ws/echo?id={first}&t=1", subprotocols=["chat", "superchat"]) as ws:
        ws.send("hi")
        assert ws.recv(timeout=30) == "hi"
    events = app_log(server.url, first)
    scope = events[0]["scope"]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["scheme"] == "ws"
    assert scope["http_version"] == "1.1"
    assert scope["path"] == "/ws/echo"
    assert scope["raw_path"] == "/ws/echo"
    assert scope["root_path"] == "/ws"
    assert scope["query_string"] == f"id={first}&t=1"
    assert scope["subprotocols"] == ["chat", "superchat"]
    assert "sec-websocket-key" in [name for name, _ in scope["headers"]]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert not scope["has_method"]
    assert scope["extensions"] == ["websocket.http.response"]
    assert scope["state"]["lifespan"] == "from startup"
    assert received(events)[0] == {"type": "websocket.connect", "keys": ["type"]}

    with open_ws(server, f"/ws/echo?id={second}") as ws:
        pass
    scope = app_log(server.url, second)[0]["scope"]
    assert scope["subprotocols"] == []  # assertion 61, second half
    # The first connection overwrote its copy's key and appended to the shared list.
    assert scope["state"]["lifespan"] == "from startup"
    assert first in scope["state"]["shared"]


def test_trusted_proxy_headers_set_client_and_scheme(server: RunningServer) -> None:
    """``trusted_proxies`` applies to WebSocket scopes too; ``https`` from the proxy means ``wss``."""
    conn_id = new_id()
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.com"}
    with open_ws(server, f"/proxied/echo?id={conn_id}", additional_headers=forwarded):
        pass
    scope = app_log(server.url, conn_id, mount="proxied")[0]["scope"]
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "wss"
    assert scope["server"] == ["example.com", 443]
    # The same headers from an untrusted peer change nothing.
    conn_id = new_id()
    with open_ws(server, f"/ws/echo?id={conn_id}", additional_headers=forwarded):
        pass
    scope = app_log(server.url, conn_id)[0]["scope"]
    assert (scope["client"][0], scope["scheme"]) == ("127.0.0.1", "ws")


def test_subprotocol_negotiation(server: RunningServer) -> None:
    """Assertions 64 and 65."""
    with open_ws(server, f"/ws/echo?id={new_id()}&sub=chat", subprotocols=["chat", "superchat"]) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response is not None
        assert ws.response.headers.get_all("Sec-WebSocket-Protocol") == ["chat"]
    with open_ws(server, f"/ws/echo?id={new_id()}", subprotocols=["chat"]) as ws:
        assert ws.subprotocol is None
        assert ws.response is not None
        assert "Sec-WebSocket-Protocol" not in ws.response.headers


def test_accept_headers_reach_the_101(server: RunningServer) -> None:
    """Assertion 66."""
    with open_ws(server, f"/ws/echo?id={new_id()}&hdr=1") as ws:
        assert ws.response is not None
        assert ws.response.headers["X-Ws"] == "1"


def test_invalid_accepts_raise_and_leave_the_handshake_open(server: RunningServer) -> None:
    """Assertion 67 (and an unknown message type, 45 for WebSockets)."""
    conn_id = new_id()
    with open_ws(server, f"/ws/bad_accept?id={conn_id}", subprotocols=["chat"]) as ws:
        assert ws.subprotocol is None
        ws.send("still works")
        assert ws.recv(timeout=30) == "still works"
    assert send_errors(app_log(server.url, conn_id))[:5] == [
        ("websocket.accept", "ASGIProtocolError"),
        ("websocket.accept", "ASGIProtocolError"),
        ("websocket.accept", "ASGIProtocolError"),
        ("websocket.bogus", "ASGIProtocolError"),
        ("websocket.accept", None),
    ]


@pytest.mark.parametrize(
    ("overrides", "status"),
    [({"Sec-WebSocket-Key": None}, 400), ({"Sec-WebSocket-Version": b"8"}, 426), ({"Content-Length": b"3"}, 400)],
)
def test_invalid_handshake_requests_get_an_http_error(
    server: RunningServer, overrides: dict[str, bytes | None], status: int
) -> None:
    body = b"abc" if "Content-Length" in overrides else b""
    response, _, closed = raw_http(server.port, upgrade_request(server.port, "/ws/echo", **overrides) + body)
    assert response.status_code == status
    assert closed
    if status == 426:
        assert (b"sec-websocket-version", b"13") in response.headers


def test_plain_get_on_the_same_resource_is_http(server: RunningServer) -> None:
    """Without the upgrade headers the app gets an ``http`` scope (here: its log endpoint)."""
    response, body, _ = raw_http(server.port, b"GET /ws/load HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.status_code == 200 and "peak" in json.loads(body)


# ---- denial -----------------------------------------------------------------------


def test_close_before_accept_is_403_without_101(server: RunningServer) -> None:
    """Assertion 63."""
    conn_id = new_id()
    with pytest.raises(InvalidStatus) as info:
        open_ws(server, f"/ws/deny?id={conn_id}")
    assert info.value.response.status_code == 403
    response, _, closed = raw_http(server.port, upgrade_request(server.port, f"/ws/deny?id={new_id()}"))
    assert response.status_code == 403 and closed  # raw_http fails on any 1xx
    events = app_log(server.url, conn_id)
    assert received(events)[-1] == {
        "type": "websocket.disconnect",
        "keys": ["code", "reason", "type"],
        "code": 1008,
        "reason": "",
    }


def test_denial_response_extension_sends_status_headers_and_body(server: RunningServer) -> None:
    """Assertion 86: the app's own status, headers and body, then the connection closes."""
    conn_id = new_id()
    response, body, closed = raw_http(server.port, upgrade_request(server.port, f"/ws/deny_custom?id={conn_id}"))
    assert response.status_code == 401
    assert (b"content-type", b"text/plain") in response.headers
    assert (b"x-denied", b"yes") in response.headers
    assert body == b"nope"
    assert closed
    assert ("websocket.send", "ClientDisconnected") in send_errors(app_log(server.url, conn_id))


@pytest.mark.parametrize("behaviour", ["raise_before", "return_before"])
def test_app_failing_before_accept_is_500_without_101(server: RunningServer, behaviour: str) -> None:
    """Assertion 82; the traceback goes to the log, not to the client."""
    response, body, closed = raw_http(server.port, upgrade_request(server.port, f"/ws/{behaviour}?id={new_id()}"))
    assert response.status_code == 500
    assert body == b"Internal Server Error\n"
    assert closed
    if behaviour == "raise_before":
        assert "boom before accept" in server.log()


def test_send_before_accept_raises(server: RunningServer) -> None:
    """Assertion 84."""
    conn_id = new_id()
    with pytest.raises(InvalidStatus):
        open_ws(server, f"/ws/send_before_accept?id={conn_id}")
    assert send_errors(app_log(server.url, conn_id)) == [
        ("websocket.send", "ASGIProtocolError"),
        ("websocket.close", None),
    ]


# ---- data messages ----------------------------------------------------------------


def test_text_and_bytes_arrive_as_one_key_each(server: RunningServer) -> None:
    """Assertions 68 and 69."""
    conn_id = new_id()
    with open_ws(server, f"/ws/echo?id={conn_id}") as ws:
        ws.send("héllo")
        assert ws.recv(timeout=30) == "héllo"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=30) == b"\x00\xff"
    text, data = received(app_log(server.url, conn_id))[1:3]
    assert text == {
        "type": "websocket.receive",
        "keys": ["text", "type"],
        "text": {"kind": "str", "len": 5, "head": "héllo"},
    }
    assert data == {
        "type": "websocket.receive",
        "keys": ["bytes", "type"],
        "bytes": {"kind": "bytes", "len": 2, "head": "00ff"},
    }


@pytest.mark.parametrize("size", [1, 125, 126, 65535, 65536, MiB, 16 * MiB], ids=lambda n: f"{n}B")
@pytest.mark.parametrize("kind", ["text", "bytes"])
def test_echo_from_one_byte_to_16_mib(server: RunningServer, size: int, kind: str) -> None:
    """Messages up to the default 16 MiB limit, inclusive, come back intact and of the same kind."""
    pattern = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = (pattern * (size // len(pattern) + 1))[:size]
    payload: str | bytes = text if kind == "text" else text.encode()[::-1]
    with open_ws(server, f"/ws/echo?id={new_id()}", max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=60) == payload


def test_fragmented_message_is_delivered_whole(server: RunningServer) -> None:
    """Assertion 70."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/echo?id={conn_id}")
    try:
        assert isinstance(client.handshake(), AcceptConnection)
        for part, last in (("frag", False), ("ment", False), ("ed", True)):
            client.send(TextMessage(data=part, message_finished=last))
        echoed = ""
        while True:
            event = client.next_event()
            assert isinstance(event, TextMessage)
            echoed += event.data
            if event.message_finished:
                break
        assert echoed == "fragmented"
        client.send(CloseConnection(code=1000))
    finally:
        client.close()
    texts = [m for m in received(app_log(server.url, conn_id)) if m["type"] == "websocket.receive"]
    assert [m["text"]["head"] for m in texts] == ["fragmented"]


def test_app_sends_text_then_bytes_and_invalid_sends_raise(server: RunningServer) -> None:
    """Assertions 71 and 72 (and a second accept raises)."""
    conn_id = new_id()
    with open_ws(server, f"/ws/bad_send?id={conn_id}") as ws:
        assert ws.recv(timeout=30) == "x"
        assert ws.recv(timeout=30) == b"y"
    assert send_errors(app_log(server.url, conn_id))[1:8] == [
        ("websocket.send", "ASGIProtocolError"),
        ("websocket.send", "ASGIProtocolError"),
        ("websocket.send", "ASGIProtocolError"),
        ("websocket.send", "ASGIProtocolError"),
        ("websocket.accept", "ASGIProtocolError"),
        ("websocket.send", None),
        ("websocket.send", None),
    ]


def test_client_ping_gets_pong_and_no_app_event(server: RunningServer) -> None:
    """Assertion 73."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/echo?id={conn_id}")
    try:
        client.handshake()
        client.send(Ping(payload=b"P"))
        assert client.next_event() == Pong(payload=b"P")
        client.send(TextMessage(data="t"))
        assert client.next_event() == TextMessage(data="t")
        client.send(CloseConnection(code=1000))
    finally:
        client.close()
    kinds = [m["type"] for m in received(app_log(server.url, conn_id))]
    assert kinds == ["websocket.connect", "websocket.receive", "websocket.disconnect"]


def test_max_message_size_closes_with_1009(server: RunningServer) -> None:
    """A message over ``ws_max_message_size`` (1024 on /small) closes the connection with 1009."""
    conn_id = new_id()
    with open_ws(server, f"/small/echo?id={conn_id}") as ws:
        ws.send(b"x" * 1024)
        assert ws.recv(timeout=30) == b"x" * 1024
        ws.send(b"x" * 1025)
        closed = closed_by_server(ws)
    assert closed.rcvd is not None and closed.rcvd.code == 1009
    assert received(app_log(server.url, conn_id, mount="small"))[-1]["code"] == 1009


def test_invalid_utf8_closes_with_1007(server: RunningServer) -> None:
    """Assertion 85."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/echo?id={conn_id}")
    try:
        client.handshake()
        # A masked text frame (FIN, opcode 1) whose payload is 0xff 0xfe: not UTF-8.
        mask = b"\x01\x02\x03\x04"
        client.sock.sendall(b"\x81\x82" + mask + bytes(b ^ m for b, m in zip(b"\xff\xfe", mask, strict=False)))
        close = client.next_event()
        assert isinstance(close, CloseConnection) and close.code == 1007
    finally:
        client.close()
    assert received(app_log(server.url, conn_id))[-1]["code"] == 1007


# ---- closing ------------------------------------------------------------------------


def test_client_close_code_and_reason_reach_the_app(server: RunningServer) -> None:
    """Assertions 74, 80 (after a client close) and 81."""
    conn_id = new_id()
    with open_ws(server, f"/ws/echo?id={conn_id}") as ws:
        ws.close(4001, "bye")
    events = app_log(server.url, conn_id)
    disconnect = received(events)[-1]
    assert (disconnect["type"], disconnect["code"], disconnect["reason"]) == ("websocket.disconnect", 4001, "bye")
    after = [e for e in events if e["event"] == "send"][-1]
    assert after["error"] == "ClientDisconnected" and after["oserror"]


def test_client_close_without_code_is_1005(server: RunningServer) -> None:
    """Assertion 75."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/echo?id={conn_id}")
    try:
        client.handshake()
        client.send(CloseConnection(code=CloseReason.NO_STATUS_RCVD))
        reply = client.next_event()
        assert isinstance(reply, CloseConnection)
    finally:
        client.close()
    assert received(app_log(server.url, conn_id))[-1]["code"] == 1005


def test_abrupt_disconnect_is_1006(server: RunningServer) -> None:
    """Assertion 76: TCP dropped without a close frame."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/echo?id={conn_id}")
    client.handshake()
    client.send(TextMessage(data="then gone"))
    assert client.next_event() == TextMessage(data="then gone")
    client.close()
    assert received(app_log(server.url, conn_id))[-1]["code"] == 1006


@pytest.mark.parametrize(("query", "code", "reason"), [("&code=4000&reason=done", 4000, "done"), ("", 1000, "")])
def test_app_close_code_and_reason_reach_the_client(server: RunningServer, query: str, code: int, reason: str) -> None:
    """Assertions 77, 78, 80 (after the app's close) and 81."""
    conn_id = new_id()
    with open_ws(server, f"/ws/close?id={conn_id}{query}") as ws:
        closed = closed_by_server(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (code, reason)
    events = app_log(server.url, conn_id)
    disconnect = received(events)[-1]
    assert (disconnect["code"], disconnect["reason"]) == (code, reason)
    assert send_errors(events)[-2:] == [
        ("websocket.send", "ClientDisconnected"),
        ("websocket.close", "ClientDisconnected"),
    ]


def test_unsendable_close_codes_raise_and_long_reasons_are_truncated(server: RunningServer) -> None:
    """Assertion 79: no invalid close frame reaches the wire."""
    conn_id = new_id()
    with open_ws(server, f"/ws/bad_close?id={conn_id}") as ws:
        closed = closed_by_server(ws)
    assert closed.rcvd is not None
    assert (closed.rcvd.code, closed.rcvd.reason) == (4002, "é" * 61)  # 122 bytes: the 62nd "é" would split
    assert send_errors(app_log(server.url, conn_id))[1:] == [("websocket.close", "ASGIProtocolError")] * 7 + [
        ("websocket.close", None)
    ]


@pytest.mark.parametrize(("behaviour", "code"), [("raise_after", 1011), ("return_after", 1000)])
def test_app_ending_after_accept_closes_the_socket(server: RunningServer, behaviour: str, code: int) -> None:
    """Assertion 83: a close frame (1011 on error, 1000 on return), then the TCP connection closes."""
    client = RawClient(server.port, f"/ws/{behaviour}?id={new_id()}")
    try:
        client.handshake()
        client.send(TextMessage(data="go"))
        close = client.next_event()
        assert isinstance(close, CloseConnection) and close.code == code
        client.send(close.response())
        assert client.read_to_eof() == b""
    finally:
        client.close()


# ---- flow control and keepalive ------------------------------------------------------


def test_send_waits_while_the_client_does_not_read(server: RunningServer) -> None:
    """``await send()`` blocks once the transport is paused, so memory does not grow with the backlog."""
    conn_id = new_id()
    client = RawClient(server.port, f"/ws/flood?id={conn_id}&count=64", rcvbuf=64 * 1024)
    try:
        client.handshake()
        # 64 MiB cannot fit in socket buffers: without flow control all sends would finish at once.
        events = app_log(server.url, conn_id, until="blocked,sent")
        assert [e["event"] for e in events][-1] == "blocked"
        for i in range(64):
            payload = b""
            while True:
                event = client.next_event()
                assert isinstance(event, BytesMessage)
                payload += event.data
                if event.message_finished:
                    break
            assert payload == bytes([i]) * MiB
        client.send(CloseConnection(code=1000))
    finally:
        client.close()
    sent = next(e for e in app_log(server.url, conn_id) if e["event"] == "sent")
    assert sent["blocked_at"] is not None


def test_keepalive_timeout_closes_with_1011(server: RunningServer) -> None:
    """A client that never answers pings is closed (``/fastping``: 0.1 s interval, 0.5 s timeout)."""
    conn_id = new_id()
    client = RawClient(server.port, f"/fastping/echo?id={conn_id}")
    try:
        client.handshake()
        while isinstance(event := client.next_event(), Ping):
            pass  # ignored: no pong
        assert isinstance(event, CloseConnection)
        assert (event.code, event.reason) == (1011, "keepalive ping timeout")
        assert client.read_to_eof() == b""
    finally:
        client.close()
    assert received(app_log(server.url, conn_id, mount="fastping"))[-1]["code"] == 1011


def test_keepalive_answered_keeps_the_connection(server: RunningServer) -> None:
    """Several ping/pong rounds later the connection still echoes."""
    client = RawClient(server.port, f"/fastping/echo?id={new_id()}")
    try:
        client.handshake()
        for _ in range(3):
            ping = client.next_event()
            assert isinstance(ping, Ping)
            client.send(ping.response())
        client.send(TextMessage(data="still here"))
        while isinstance(event := client.next_event(), Ping):
            client.send(event.response())
        assert event == TextMessage(data="still here")
        client.send(CloseConnection(code=1000))
    finally:
        client.close()


# ---- frameworks at sub-paths -------------------------------------------------------


def test_starlette_websocket_endpoint_at_a_sub_path(server: RunningServer) -> None:
    with open_ws(server, "/star/echo", subprotocols=["json"]) as ws:
        assert ws.subprotocol == "json"
        ws.send(json.dumps({"a": 1}))
        assert json.loads(ws.recv(timeout=30)) == {
            "echo": {"a": 1},
            "url": f"ws://127.0.0.1:{server.port}/star/echo",
            "path": "/star/echo",
            "root_path": "/star",
        }
        ws.close(4003, "done")
    assert httpx.get(f"{server.url}/star/closes", params={"n": 1}, timeout=40).json() == [4003]


def test_fastapi_websocket_route_at_a_deeper_sub_path(server: RunningServer) -> None:
    with open_ws(server, "/deep/fast/items/42/ws?q=hi") as ws:
        ws.send("x")
        assert json.loads(ws.recv(timeout=30)) == {"item_id": 42, "q": "hi", "text": "x", "root_path": "/deep/fast"}


def test_denied_upgrade_is_reported_by_the_websockets_client_too(server: RunningServer) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_ws(server, f"/ws/deny_custom?id={new_id()}")
    assert info.value.response.status_code == 401
    assert info.value.response.body == b"nope"


def test_reject_of_missing_route_in_starlette_is_403(server: RunningServer) -> None:
    """Starlette closes unknown websocket routes before accepting: the client sees 403."""
    with pytest.raises(InvalidStatus) as info:
        open_ws(server, "/star/nowhere")
    assert info.value.response.status_code == 403


def test_rejected_handshake_raw_event(server: RunningServer) -> None:
    client = RawClient(server.port, f"/ws/deny?id={new_id()}")
    try:
        event = client.handshake()
        assert isinstance(event, RejectConnection) and event.status_code == 403
    finally:
        client.close()


def test_an_app_spinning_on_receive_after_the_close_does_not_freeze_the_server(server: RunningServer) -> None:
    """Issue 15: receive() answering from state (the disconnect) lets the loop turn first.

    The spinning app calls receive() in a loop without looking at the type; meanwhile a second
    client is served, and the disconnect grace still cancels the spinner.
    """
    conn_id = new_id()
    with open_ws(server, f"/ws/spin?id={conn_id}"):
        pass  # the close handshake completes: the app now gets websocket.disconnect on every call
    with open_ws(server, "/ws/spin_status") as ws:
        ws.send("?")
        status = json.loads(ws.recv(timeout=30))
    assert status["calls"] > 0
    end = app_log(server.url, conn_id)[-1]
    assert end == {"event": "end", "how": "raised", "error": "CancelledError"}
