"""A client's reset reaches Twisted on every loop, even behind data it sent and nobody read yet.

On uvloop a reader is a libuv poll handle, which libuv stops for good once it
reports an error (``POLLERR``, as a reset does); uvloop then runs the read
callback once.  Twisted reads one buffer per callback, so without
``BridgeReactor``'s check of the socket's pending error the rest of the data,
and the reset behind it, would never be read: no ``connectionLost``, the
connection and its request kept forever.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import uvloop
from twisted.internet.error import ConnectionLost

from tests.bridge.reactor_harness import Harness, Recorder, tcp_server

#: More than Twisted reads in one callback (``bufferSize``, 64 KiB): data is left behind the reset.
UNREAD = 200 * 1024


@pytest.fixture(params=["asyncio", "uvloop"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = Harness(uvloop.new_event_loop() if request.param == "uvloop" else None)
    try:
        yield h
    finally:
        h.close()


def tcp_transport(server: Recorder) -> Any:
    """The server's ``tcp.Server`` transport (an ``ITransport`` by its annotation)."""
    return server.transport


def reset_behind_data(server: Recorder, peer: socket.socket) -> None:
    """The peer sends UNREAD bytes and resets; returns once the server's socket reports the error."""
    peer.sendall(b"x" * UNREAD)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    poller = select.poll()
    poller.register(tcp_transport(server).getHandle().fileno(), select.POLLERR)
    assert poller.poll(30_000), "the reset never reached the server's socket"


def test_reset_while_reading_is_paused_is_reported_on_resume(harness: Harness) -> None:
    server, peer = tcp_server(harness)
    tcp_transport(server).pauseProducing()
    reset_behind_data(server, peer)
    tcp_transport(server).resumeProducing()
    harness.wait(server.lost)
    assert server.reason is not None and server.reason.check(ConnectionLost)
    assert server.lost_count == 1


def test_reset_while_reading_is_reported(harness: Harness) -> None:
    server, peer = tcp_server(harness)
    reset_behind_data(server, peer)
    harness.wait(server.lost)
    assert server.reason is not None and server.reason.check(ConnectionLost)
    assert len(server.received) <= UNREAD
