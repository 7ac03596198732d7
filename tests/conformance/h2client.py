"""A minimal HTTP/2 client on the ``h2`` state machine, for what httpx cannot do.

httpx never resets a stream it stops reading (it just forgets it), so a test
of "the client cancelled this one request" needs to send RST_STREAM itself.
"""

from __future__ import annotations

import select
import socket
import ssl
from dataclasses import dataclass, field

import h2.connection
import h2.errors
import h2.events

from tests.conformance.fronts import DEADLINE, Front


@dataclass
class StreamState:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytes = b""
    ended: bool = False
    reset: bool = False


class H2Session:
    """One TLS connection speaking HTTP/2 to ``front``."""

    def __init__(self, front: Front, context: ssl.SSLContext) -> None:
        self.front = front
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((front.host, front.port), timeout=DEADLINE)
        self.sock = context.wrap_socket(raw, server_hostname=front.host)
        assert self.sock.selected_alpn_protocol() == "h2"
        self.conn = h2.connection.H2Connection()
        self.conn.initiate_connection()
        self.streams: dict[int, StreamState] = {}
        self._flush()

    def close(self) -> None:
        self.sock.close()

    def _flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def get(self, path: str, headers: dict[str, str]) -> int:
        """Open a GET stream; return its id."""
        stream_id: int = self.conn.get_next_available_stream_id()
        request = [
            (":method", "GET"),
            (":path", self.front.target(path)),
            (":scheme", "https"),
            (":authority", f"{self.front.host}:{self.front.port}"),
            *headers.items(),
        ]
        self.conn.send_headers(stream_id, request, end_stream=True)
        self.streams[stream_id] = StreamState()
        self._flush()
        return stream_id

    def post(self, path: str, headers: dict[str, str]) -> int:
        """Open a POST stream whose body the caller then sends; return its id."""
        stream_id: int = self.conn.get_next_available_stream_id()
        request = [
            (":method", "POST"),
            (":path", self.front.target(path)),
            (":scheme", "https"),
            (":authority", f"{self.front.host}:{self.front.port}"),
            *headers.items(),
        ]
        self.conn.send_headers(stream_id, request)
        self.streams[stream_id] = StreamState()
        self._flush()
        return stream_id

    def push_until_stalled(self, stream_id: int, stall_window: float, give_up: int) -> int:
        """Send DATA as flow control allows until no WINDOW_UPDATE comes for ``stall_window`` s.

        Returns the bytes sent; fails if the server keeps opening the window past ``give_up``.
        """
        sent = 0
        while sent < give_up:
            window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if window > 0:
                self.conn.send_data(stream_id, b"u" * window)
                self._flush()
                sent += window
                continue
            if not self.sock.pending() and not select.select([self.sock], [], [], stall_window)[0]:
                return sent
            self._receive()
        raise AssertionError(f"the server took {sent} bytes of a stream body the app is not reading")

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
        self._flush()

    def read_until(self, stream_id: int, done: str) -> StreamState:
        """Process frames until the stream has ``data`` (any), or has ``ended``."""
        stream = self.streams[stream_id]
        while not (stream.data if done == "data" else stream.ended or stream.reset):
            self._receive()
        return stream

    def _receive(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the HTTP/2 connection")
        for event in self.conn.receive_data(data):
            self._handle(event)
        self._flush()

    def _handle(self, event: h2.events.Event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", 0))
        if stream is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            stream.headers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream.data += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = True
