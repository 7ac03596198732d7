"""A ``BridgeReactor`` on its own loop, and a recording protocol, for the reactor tests.

Shared by tests/bridge/test_reactor_writes.py and test_reactor_resets.py: never
the global reactor, real sockets, and every wait bounded by ``WAIT``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from bridge._reactor import BridgeReactor

WAIT = 30.0  # seconds before a missing event fails the test (a hang guard, not a measurement)


class Harness:
    """A BridgeReactor on its own loop, and everything to close at the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.new_event_loop()
        self.reactor = BridgeReactor(self.loop)
        self.closers: list[Callable[[], object]] = []

    def wait(self, d: Deferred[Any]) -> Any:
        """Run the loop until ``d`` fires; return its result."""
        return self.loop.run_until_complete(asyncio.wait_for(d.asFuture(self.loop), WAIT))

    def turn(self) -> None:
        """Let the loop run what is ready now (one pass of callbacks, no waiting for I/O)."""
        self.loop.run_until_complete(asyncio.sleep(0))

    def close(self) -> None:
        for close in reversed(self.closers):
            result = close()
            if isinstance(result, Deferred):
                self.wait(result)
        self.turn()
        # What Twisted's own ReactorBuilder does for a reactor it never ran.
        for reader in list(self.reactor._internalReaders):
            self.reactor.removeReader(reader)
            reader.connectionLost(None)
        self.reactor.disconnectAll()
        for call in self.reactor.getDelayedCalls():
            call.cancel()
        self.loop.close()


class Recorder(protocol.Protocol):
    """Records what happens to it; ``made``/``lost`` fire once each."""

    def __init__(self) -> None:
        self.made: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()
        self.reason: Failure | None = None
        self.received = bytearray()
        self.lost_count = 0
        self.in_write = False  # set by tests around transport.write()
        self.lost_inside_write = False
        self._expected: tuple[int, Deferred[None]] | None = None

    def expect(self, n: int) -> Deferred[None]:
        """A Deferred that fires once ``n`` bytes have been received."""
        d: Deferred[None] = Deferred()
        self._expected = (n, d)
        self.dataReceived(b"")
        return d

    def connectionMade(self) -> None:
        self.made.callback(None)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self._expected and len(self.received) >= self._expected[0]:
            d = self._expected[1]
            self._expected = None
            d.callback(None)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost_count += 1
        self.lost_inside_write |= self.in_write
        if not self.lost.called:
            self.reason = reason
            self.lost.callback(None)


def factory_for(proto: protocol.Protocol) -> protocol.ClientFactory:
    """A factory (for clients and servers alike) that hands out ``proto``."""
    f = protocol.ClientFactory()
    f.buildProtocol = lambda addr: proto  # type: ignore[method-assign]
    return f


def tcp_server(h: Harness, server: Recorder | None = None) -> tuple[Recorder, socket.socket]:
    """``server`` (a new Recorder by default) served by ``listenTCP``, and a connected plain peer socket."""
    server = server or Recorder()
    port = h.reactor.listenTCP(0, factory_for(server), interface="127.0.0.1")
    h.closers.append(port.stopListening)
    peer = socket.create_connection(("127.0.0.1", port.getHost().port))
    h.closers.append(peer.close)
    h.wait(server.made)
    return server, peer
