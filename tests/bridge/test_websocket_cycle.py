"""The sans-IO WebSocket cycle, driven by a wsproto client (no Twisted, no sockets)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import h11
import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import H11Handshake

from bridge._ws_actions import (
    AcceptUpgrade,
    Action,
    AwaitPeerClose,
    CloseTransport,
    HandshakeError,
    SendBytes,
    StartDenial,
)
from bridge._ws_cycle import Phase, WebSocketCycle
from bridge._ws_handshake import is_upgrade_offer
from bridge._ws_inbox import BACKLOG_MESSAGES
from bridge._ws_validate import close_reason_of
from bridge.errors import ASGIProtocolError, ClientDisconnected

CONNECT = {"type": "websocket.connect"}


class Peer:
    """A wsproto client on the other end of a cycle."""

    def __init__(self, subprotocols: list[str] | None = None, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        self.handshake = H11Handshake(ConnectionType.CLIENT)
        wire = self.handshake.send(
            Request(host="example.com", target="/ws?x=1", subprotocols=subprotocols or [], extra_headers=extra or [])
        )
        # Parse the client's bytes once, as the HTTP server (Twisted) would.
        server = h11.Connection(h11.SERVER)
        server.receive_data(wire)
        request = server.next_event()
        assert isinstance(request, h11.Request)
        self.headers = list(request.headers)
        self.conn: Connection | None = None

    def feed(self, actions: list[Action]) -> list[Event]:
        """Deliver the bytes the cycle wants written; return what the client saw."""
        events: list[Event] = []
        for action in actions:
            if isinstance(action, AcceptUpgrade | StartDenial | SendBytes):
                if self.conn is None:
                    self.handshake.receive_data(action.data)
                    events.extend(self.handshake.events())
                    self.conn = self.handshake.connection
                else:
                    self.conn.receive_data(action.data)
                    events.extend(self.conn.events())
        return events

    def send(self, event: Event) -> bytes:
        assert self.conn is not None
        return self.conn.send(event)


def opened(
    subprotocols: list[str] | None = None, max_message_size: int | None = 1 << 20
) -> tuple[WebSocketCycle, Peer]:
    peer = Peer(subprotocols)
    cycle = WebSocketCycle(peer.headers, b"/ws?x=1", max_message_size=max_message_size)
    assert cycle.next_receive() == CONNECT
    events = peer.feed(cycle.app_send({"type": "websocket.accept"}))
    assert isinstance(events[0], AcceptConnection)
    return cycle, peer


def sent_frames(peer: Peer, actions: list[Action]) -> list[Event]:
    return peer.feed([a for a in actions if isinstance(a, SendBytes)])


# ---- handshake ------------------------------------------------------------------


def test_connect_is_the_first_message_and_nothing_is_written_before_the_app_answers() -> None:
    peer = Peer(["chat", "superchat"])
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    assert cycle.phase is Phase.HANDSHAKE
    assert cycle.offered == ["chat", "superchat"]
    assert cycle.next_receive() == CONNECT
    assert cycle.next_receive() is None


def test_accept_with_subprotocol_and_headers_produces_the_101() -> None:
    peer = Peer(["chat", "superchat"])
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    actions = cycle.app_send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-ws", b"1")]})
    assert [type(a) for a in actions] == [AcceptUpgrade]
    (accepted,) = peer.feed(actions)
    assert isinstance(accepted, AcceptConnection)
    assert accepted.subprotocol == "chat"
    assert (b"x-ws", b"1") in accepted.extra_headers
    assert cycle.phase is Phase.OPEN


def test_accept_without_subprotocol_sends_no_protocol_header() -> None:
    peer = Peer(["chat"])
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    actions = cycle.app_send({"type": "websocket.accept", "subprotocol": None, "headers": None})
    assert isinstance(actions[0], AcceptUpgrade)
    assert b"sec-websocket-protocol" not in actions[0].data.lower()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.accept", "subprotocol": "not-offered"},
        {"type": "websocket.accept", "subprotocol": b"chat"},
        {"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]},
        {"type": "websocket.accept", "headers": [(b"upgrade", b"h2c")]},
        {"type": "websocket.accept", "headers": [(b":status", b"101")]},
        {"type": "websocket.accept", "headers": [(b"x-str", "not bytes")]},
        {"type": "websocket.accept", "headers": [(b"x-crlf", b"a\r\nb: c")]},
        {"type": "websocket.send", "text": "before accept"},
        {"type": "websocket.http.response.body", "body": b"before start"},
        {"type": "websocket.bogus"},
    ],
)
def test_invalid_messages_during_the_handshake_raise_and_change_nothing(message: dict[str, Any]) -> None:
    peer = Peer(["chat"])
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    with pytest.raises(ASGIProtocolError):
        cycle.app_send(message)
    assert cycle.phase is Phase.HANDSHAKE
    (accepted,) = peer.feed(cycle.app_send({"type": "websocket.accept", "subprotocol": "chat"}))
    assert isinstance(accepted, AcceptConnection) and accepted.subprotocol == "chat"


def test_close_before_accept_is_a_403_and_then_disconnect() -> None:
    peer = Peer()
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    actions = cycle.app_send({"type": "websocket.close", "code": 1008})
    assert isinstance(actions[0], StartDenial) and actions[0].status == 403
    assert isinstance(actions[-1], CloseTransport)
    events = peer.feed(actions)
    assert isinstance(events[0], RejectConnection) and events[0].status_code == 403
    assert b"".join(e.data for e in events if isinstance(e, RejectData)) == b"Forbidden\n"
    assert cycle.next_receive() == CONNECT
    assert cycle.next_receive() == {"type": "websocket.disconnect", "code": 1008, "reason": ""}
    with pytest.raises(ClientDisconnected):
        cycle.app_send({"type": "websocket.accept"})


def test_denial_response_extension_sends_the_apps_status_headers_and_body() -> None:
    peer = Peer()
    cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
    start = {"type": "websocket.http.response.start", "status": 401, "headers": [(b"content-type", b"text/plain")]}
    head = cycle.app_send(start)
    assert head == [StartDenial(401, head[0].data)] and cycle.phase is Phase.DENYING  # type: ignore[union-attr]
    with pytest.raises(ASGIProtocolError):
        cycle.app_send({"type": "websocket.accept"})
    middle = cycle.app_send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
    end = cycle.app_send({"type": "websocket.http.response.body", "body": b"pe"})
    assert isinstance(end[-1], CloseTransport)
    events = peer.feed(head + middle + end)
    assert isinstance(events[0], RejectConnection)
    assert events[0].status_code == 401
    assert (b"content-type", b"text/plain") in events[0].headers
    assert b"".join(e.data for e in events if isinstance(e, RejectData)) == b"nope"
    assert events[-1] == RejectData(data=b"", body_finished=True)
    assert cycle.phase is Phase.CLOSED
    with pytest.raises(ClientDisconnected):
        cycle.app_send({"type": "websocket.send", "text": "late"})


@pytest.mark.parametrize("status", [101, 199, 600, "401", None])
def test_denial_status_must_be_a_final_http_status(status: Any) -> None:
    cycle = WebSocketCycle(Peer().headers, b"/ws", max_message_size=None)
    with pytest.raises(ASGIProtocolError):
        cycle.app_send({"type": "websocket.http.response.start", "status": status, "headers": []})


def test_app_failing_or_returning_before_accept_is_a_500() -> None:
    for end in ("app_failed", "app_returned"):
        peer = Peer()
        cycle = WebSocketCycle(peer.headers, b"/ws", max_message_size=None)
        events = peer.feed(getattr(cycle, end)())
        assert isinstance(events[0], RejectConnection) and events[0].status_code == 500


def test_app_ending_mid_denial_truncates_instead_of_completing() -> None:
    cycle = WebSocketCycle(Peer().headers, b"/ws", max_message_size=None)
    cycle.app_send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    cycle.app_send({"type": "websocket.http.response.body", "body": b"par", "more_body": True})
    assert cycle.app_failed() == [CloseTransport()]


@pytest.mark.parametrize(
    ("drop", "add", "status"),
    [
        (b"sec-websocket-key", [], 400),
        (b"sec-websocket-version", [(b"Sec-WebSocket-Version", b"8")], 426),
        (b"connection", [], 400),
        (None, [(b"Content-Length", b"5")], 400),
        (None, [(b"Transfer-Encoding", b"chunked")], 400),
        (None, [(b"X-Bad", b" padded ")], 400),
    ],
)
def test_invalid_handshakes_are_refused(drop: bytes | None, add: list[tuple[bytes, bytes]], status: int) -> None:
    headers = [(n, v) for n, v in Peer().headers if n.lower() != drop] + add
    with pytest.raises(HandshakeError) as info:
        WebSocketCycle(headers, b"/ws", max_message_size=None)
    assert info.value.status == status


def test_upgrade_offer_needs_both_tokens_in_any_case() -> None:
    assert is_upgrade_offer([(b"Upgrade", b"WebSocket"), (b"Connection", b"keep-alive, Upgrade")])
    assert not is_upgrade_offer([(b"Upgrade", b"websocket")])
    assert not is_upgrade_offer([(b"Upgrade", b"h2c"), (b"Connection", b"upgrade")])


# ---- data messages ----------------------------------------------------------------


def test_text_and_bytes_from_the_client_reach_the_app_with_one_key() -> None:
    cycle, peer = opened()
    assert cycle.receive_data(peer.send(TextMessage(data="héllo"))) == []
    assert cycle.receive_data(peer.send(BytesMessage(data=b"\x00\xff"))) == []
    assert cycle.next_receive() == {"type": "websocket.receive", "text": "héllo"}
    assert cycle.next_receive() == {"type": "websocket.receive", "bytes": b"\x00\xff"}
    assert cycle.next_receive() is None


def test_fragmented_message_is_reassembled_into_one() -> None:
    cycle, peer = opened()
    for part, last in (("ab", False), ("cd", False), ("é", True)):
        data = peer.send(TextMessage(data=part, message_finished=last))
        for i in range(len(data)):  # a byte at a time, like h11's tests
            cycle.receive_data(data[i : i + 1])
    assert cycle.next_receive() == {"type": "websocket.receive", "text": "abcdé"}
    assert cycle.next_receive() is None


def test_app_messages_become_text_and_binary_frames_in_order() -> None:
    cycle, peer = opened()
    actions = cycle.app_send({"type": "websocket.send", "text": "x"}) + cycle.app_send(
        {"type": "websocket.send", "bytes": b"y", "text": None}
    )
    assert sent_frames(peer, actions) == [TextMessage(data="x"), BytesMessage(data=b"y")]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.send", "text": "a", "bytes": b"b"},
        {"type": "websocket.send"},
        {"type": "websocket.send", "text": None, "bytes": None},
        {"type": "websocket.send", "text": b"bytes"},
        {"type": "websocket.send", "bytes": "str"},
        {"type": "websocket.send", "text": "\ud800"},
        {"type": "websocket.accept"},
        {"type": "websocket.http.response.start", "status": 403},
    ],
)
def test_invalid_sends_after_accept_raise(message: dict[str, Any]) -> None:
    cycle, _ = opened()
    with pytest.raises(ASGIProtocolError):
        cycle.app_send(message)
    assert cycle.phase is Phase.OPEN


def test_client_ping_gets_a_pong_and_no_app_event() -> None:
    cycle, peer = opened()
    actions = cycle.receive_data(peer.send(Ping(payload=b"P")))
    assert sent_frames(peer, actions) == [Pong(payload=b"P")]
    assert cycle.next_receive() is None


def test_message_at_the_limit_passes_and_one_byte_more_closes_with_1009() -> None:
    cycle, peer = opened(max_message_size=10)
    cycle.receive_data(peer.send(BytesMessage(data=b"x" * 10)))
    assert cycle.next_receive() == {"type": "websocket.receive", "bytes": b"x" * 10}
    # The limit counts UTF-8 bytes of the reassembled message, across fragments.
    cycle.receive_data(peer.send(TextMessage(data="ééé", message_finished=False)))
    actions = cycle.receive_data(peer.send(TextMessage(data="ééé")))  # 12 bytes, 6 characters
    (close,) = sent_frames(peer, actions)
    assert isinstance(close, CloseConnection) and close.code == 1009
    assert isinstance(actions[-1], AwaitPeerClose)
    message = cycle.next_receive()
    assert message is not None and message["code"] == 1009


def test_invalid_utf8_closes_with_1007_without_waiting() -> None:
    cycle, peer = opened()
    frame = bytearray(peer.send(TextMessage(data="ab")))
    # Client frames are masked: flip the masked payload so it decodes to 0xff 0xfe.
    mask = frame[2:6]
    frame[6:8] = bytes(b ^ m for b, m in zip(b"\xff\xfe", mask, strict=False))
    later = peer.send(TextMessage(data="ignored"))
    actions = cycle.receive_data(bytes(frame))
    (close,) = sent_frames(peer, actions)
    assert isinstance(close, CloseConnection) and close.code == 1007
    assert actions[-1] == CloseTransport()
    message = cycle.next_receive()
    assert message is not None and message["code"] == 1007
    assert cycle.receive_data(later) == []


def test_backlog_flag_rises_with_undelivered_messages_and_falls_as_the_app_reads() -> None:
    cycle, peer = opened()
    for i in range(BACKLOG_MESSAGES):
        assert not cycle.inbox.backlogged
        cycle.receive_data(peer.send(TextMessage(data=str(i))))
    assert cycle.inbox.backlogged
    cycle.next_receive()
    assert not cycle.inbox.backlogged
    cycle.receive_data(peer.send(BytesMessage(data=b"x" * (1 << 20))))
    assert cycle.inbox.backlogged


# ---- closing -----------------------------------------------------------------------


def test_client_close_code_and_reason_reach_the_app_and_are_echoed() -> None:
    cycle, peer = opened()
    cycle.receive_data(peer.send(TextMessage(data="before")))
    actions = cycle.receive_data(peer.send(CloseConnection(code=4001, reason="bye")))
    assert sent_frames(peer, actions) == [CloseConnection(code=4001, reason="bye")]
    assert actions[-1] == CloseTransport()
    assert cycle.next_receive() == {"type": "websocket.receive", "text": "before"}
    disconnect = {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}
    assert cycle.next_receive() == disconnect
    assert cycle.next_receive() == disconnect  # asked again, same answer
    with pytest.raises(ClientDisconnected):
        cycle.app_send({"type": "websocket.send", "text": "late"})


def test_client_close_without_code_is_1005() -> None:
    cycle, peer = opened()
    cycle.receive_data(peer.send(CloseConnection(code=CloseReason.NO_STATUS_RCVD)))
    assert cycle.next_receive() == {"type": "websocket.disconnect", "code": 1005, "reason": ""}


def test_connection_lost_is_1006_before_and_after_accept() -> None:
    cycle, _ = opened()
    cycle.connection_lost()
    assert cycle.next_receive() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    handshaking = WebSocketCycle(Peer().headers, b"/ws", max_message_size=None)
    handshaking.connection_lost()
    assert handshaking.next_receive() == CONNECT
    assert handshaking.next_receive() == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    with pytest.raises(ClientDisconnected):
        handshaking.app_send({"type": "websocket.accept"})


@pytest.mark.parametrize(
    ("message", "code", "reason"), [({}, 1000, ""), ({"code": 4000, "reason": "done"}, 4000, "done")]
)
def test_app_close_sends_code_and_reason_then_waits_for_the_reply(
    message: dict[str, Any], code: int, reason: str
) -> None:
    cycle, peer = opened()
    late = peer.send(TextMessage(data="late"))
    actions = cycle.app_send({"type": "websocket.close", **message})
    assert sent_frames(peer, actions) == [CloseConnection(code=code, reason=reason)]
    assert actions[-1] == AwaitPeerClose()
    assert cycle.next_receive() == {"type": "websocket.disconnect", "code": code, "reason": reason}
    with pytest.raises(ClientDisconnected):
        cycle.app_send({"type": "websocket.send", "text": "late"})
    # The client's late message is dropped; its close reply ends the connection.
    assert cycle.receive_data(late) == []
    assert cycle.receive_data(peer.send(CloseConnection(code=code))) == [CloseTransport()]


@pytest.mark.parametrize("code", [1004, 1005, 1006, 1015, 999, 1016, 2999, 5000, True, "1000"])
def test_codes_that_must_not_reach_the_wire_are_refused(code: Any) -> None:
    cycle, _ = opened()
    with pytest.raises(ASGIProtocolError):
        cycle.app_send({"type": "websocket.close", "code": code})
    assert cycle.phase is Phase.OPEN


def test_long_reasons_are_truncated_at_a_character_boundary() -> None:
    assert close_reason_of({"reason": "a" * 200}) == "a" * 123
    assert close_reason_of({"reason": "é" * 100}) == "é" * 61  # 122 bytes: the 62nd would split
    assert close_reason_of({"reason": None}) == ""
    with pytest.raises(ASGIProtocolError):
        close_reason_of({"reason": b"bytes"})
    cycle, peer = opened()
    (close,) = sent_frames(peer, cycle.app_send({"type": "websocket.close", "code": 4002, "reason": "é" * 100}))
    assert close == CloseConnection(code=4002, reason="é" * 61)


def test_app_ending_after_accept_closes_1011_on_failure_and_1000_on_return() -> None:
    for end, code in (("app_failed", 1011), ("app_returned", 1000)):
        cycle, peer = opened()
        actions = getattr(cycle, end)()
        assert sent_frames(peer, actions) == [CloseConnection(code=code, reason="")]
        assert actions[-1] == AwaitPeerClose()
    cycle, _ = opened()
    cycle.connection_lost()
    assert cycle.app_failed() == []


def test_server_close_is_a_close_frame_when_open_and_503_during_the_handshake() -> None:
    cycle, peer = opened()
    assert sent_frames(peer, cycle.server_close(1001, "bye")) == [CloseConnection(code=1001, reason="bye")]
    handshaking = WebSocketCycle(Peer().headers, b"/ws", max_message_size=None)
    assert isinstance(handshaking.server_close(1001, "bye")[0], StartDenial)


# ---- keepalive -----------------------------------------------------------------------


def test_keepalive_ping_pong_and_timeout() -> None:
    cycle, peer = opened()
    (ping,) = sent_frames(peer, cycle.ping())
    assert isinstance(ping, Ping) and cycle.awaiting_pong
    cycle.receive_data(peer.send(ping.response()))
    assert not cycle.awaiting_pong
    sent_frames(peer, cycle.ping())
    actions = cycle.keepalive_timeout()
    assert sent_frames(peer, actions) == [CloseConnection(code=1011, reason="keepalive ping timeout")]
    assert actions[-1] == CloseTransport()
    assert cycle.ping() == []
    message = cycle.next_receive()
    assert message is not None and message["code"] == 1011


@pytest.mark.parametrize("kind", ["text", "bytes"])
def test_a_message_in_many_tiny_fragments_is_held_compactly_and_delivered_whole(kind: str) -> None:
    """Issue 15 item 4: memory follows the bytes held, not how the client sliced them.

    10,000 two-byte fragments are 20 KB of payload; one object per fragment would hold ~500 KB.
    """
    cycle, peer = opened(max_message_size=None)
    count = 20_000
    frames = [
        peer.send(
            TextMessage(data="é", message_finished=i == count - 1)
            if kind == "text"
            else BytesMessage(data=b"\xe9\xe9", message_finished=i == count - 1)
        )
        for i in range(count)
    ]
    tracemalloc.start()
    try:
        for data in frames[: count // 2]:
            cycle.receive_data(data)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 64 * 1024, f"{held} bytes held for {count // 2} fragments"
    for data in frames[count // 2 :]:
        cycle.receive_data(data)
    message = cycle.next_receive()
    assert message is not None
    assert message[kind] == ("é" * count if kind == "text" else b"\xe9\xe9" * count)
