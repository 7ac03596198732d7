"""BridgeReactor writes the way asyncio's transports do: sent before ``write()`` returns.

Each test runs its own ``BridgeReactor`` on a fresh asyncio loop (never the
global reactor) with real sockets.  "Before the loop turns" is literal: the
test calls ``transport.write()`` from outside the loop and then reads the peer
socket in the same thread, so only bytes already handed to the kernel can
arrive.  Waiting on the reactor is always for a Deferred, bounded by a timeout
that only turns a hang into a failure.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from OpenSSL import SSL
from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionLost
from twisted.internet.interfaces import (
    IHalfCloseableProtocol,
    IHandshakeListener,
    IOpenSSLContextFactory,
    IPullProducer,
    IPushProducer,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from tests.bridge.reactor_harness import WAIT, Harness, Recorder, factory_for, tcp_server
from tests.tls import self_signed


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        h.close()


def tcp_client(h: Harness) -> tuple[Recorder, socket.socket]:
    """A Recorder connected by ``connectTCP`` (a client socket that was connecting), and the accepted peer."""
    listener = socket.create_server(("127.0.0.1", 0))
    h.closers.append(listener.close)
    client = Recorder()
    h.reactor.connectTCP("127.0.0.1", listener.getsockname()[1], factory_for(client))
    h.wait(client.made)
    peer, _ = listener.accept()
    h.closers.append(peer.close)
    return client, peer


def unix_server(h: Harness, tmp_path: Path) -> tuple[Recorder, socket.socket]:
    """A Recorder served by ``listenUNIX``, and a connected plain peer socket."""
    server = Recorder()
    path = str(tmp_path / "s.sock")
    port = h.reactor.listenUNIX(path, factory_for(server))
    h.closers.append(port.stopListening)
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    h.closers.append(peer.close)
    peer.connect(path)
    h.wait(server.made)
    return server, peer


def adopted_pair(h: Harness) -> tuple[Recorder, socket.socket]:
    """A Recorder on one end of a socketpair adopted with ``adoptStreamConnection``."""
    ours, peer = socket.socketpair()
    h.closers.append(peer.close)
    proto = Recorder()
    h.reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, factory_for(proto))
    ours.close()  # the reactor has its own duplicate
    h.wait(proto.made)
    return proto, peer


CONNECTIONS: dict[str, Callable[[Harness, Path], tuple[Recorder, socket.socket]]] = {
    "tcp-server": lambda h, _: tcp_server(h),
    "tcp-client": lambda h, _: tcp_client(h),
    "unix-server": unix_server,
    "adopted-socketpair": lambda h, _: adopted_pair(h),
}


def recv_exactly(peer: socket.socket, n: int) -> bytes:
    """Read ``n`` bytes from a blocking socket, without running the loop."""
    peer.settimeout(WAIT)
    data = bytearray()
    while len(data) < n:
        chunk = peer.recv(n - len(data))
        assert chunk, f"peer closed after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


@pytest.mark.parametrize("kind", sorted(CONNECTIONS))
def test_peer_reads_a_write_before_the_loop_turns(harness: Harness, tmp_path: Path, kind: str) -> None:
    """On an idle connection, ``write()`` hands the bytes to the kernel before it returns."""
    proto, peer = CONNECTIONS[kind](harness, tmp_path)
    assert proto.transport is not None
    proto.transport.write(b"hello")
    assert recv_exactly(peer, 5) == b"hello"
    assert harness.reactor.getWriters() == []  # nothing buffered, nothing watched


def test_write_sequence_empty_writes_and_order(harness: Harness) -> None:
    """writeSequence and empty writes go out inline, in order; empty writes watch nothing."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    transport.write(b"")
    assert harness.reactor.getWriters() == []
    transport.writeSequence([b"one ", b"", b"two "])
    transport.writeSequence([])
    transport.write(b"three")
    assert recv_exactly(peer, 13) == b"one two three"


def test_write_beyond_the_kernel_buffer_keeps_order_and_is_drained_by_the_reactor(harness: Harness) -> None:
    """What the kernel refuses is watched and sent later, ahead of later writes."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    big = bytes(range(256)) * (32 * 1024)  # 8 MiB: far beyond a loopback socket buffer
    transport.write(big)
    transport.write(b"tail")
    assert transport in harness.reactor.getWriters()  # the rest waits for writability
    got = read_in_thread(harness, peer, len(big) + 4)
    assert got == big + b"tail"
    assert harness.reactor.getWriters() == []


def read_in_thread(h: Harness, peer: socket.socket, n: int) -> bytes:
    """Read ``n`` bytes from ``peer`` in a thread while the loop runs; return them."""
    done: Deferred[bytes] = Deferred()

    def read() -> None:
        data = recv_exactly(peer, n)
        h.loop.call_soon_threadsafe(done.callback, data)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    data: bytes = h.wait(done)
    thread.join(WAIT)
    return data


@implementer(IPushProducer)
class PushSource:
    """A streaming producer that writes ``chunk``-sized writes for as long as it is not paused."""

    def __init__(self, proto: Recorder, limit: int, chunk: int = 65536) -> None:
        self.proto = proto
        self.limit = limit
        self.chunk = chunk
        self.written = 0
        self.paused = False
        self.pauses = 0
        self.resumed: Deferred[None] = Deferred()
        self.resumed_inside_write = False

    def produce(self) -> None:
        transport: Any = self.proto.transport
        while not self.paused and self.written < self.limit:
            self.proto.in_write = True
            transport.write(b"x" * self.chunk)
            self.proto.in_write = False
            self.written += self.chunk

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.resumed_inside_write |= self.proto.in_write
        self.paused = False
        if not self.resumed.called:
            self.resumed.callback(None)

    def stopProducing(self) -> None:
        self.paused = True


def test_full_kernel_buffer_pauses_a_streaming_producer_and_resumes_it_once_drained(harness: Harness) -> None:
    """A peer that stops reading pauses the producer; draining resumes it, outside any write()."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    source = PushSource(proto, limit=256 * 1024 * 1024)
    transport.registerProducer(source, True)
    source.produce()
    assert source.paused, "writing into a full kernel buffer never paused the producer"
    assert source.written < source.limit
    assert transport in harness.reactor.getWriters()
    got = read_in_thread(harness, peer, source.written)
    assert len(got) == source.written
    harness.wait(source.resumed)
    assert not source.resumed_inside_write


def test_a_write_over_the_buffer_size_that_the_kernel_takes_resumes_next_turn(harness: Harness) -> None:
    """write() pauses a producer for a large chunk; once it is all sent the resume comes from the loop."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    source = PushSource(proto, limit=100_000, chunk=100_000)  # one write over bufferSize (64 KiB)
    transport.registerProducer(source, True)
    source.produce()
    assert source.pauses == 1
    assert recv_exactly(peer, source.written) == b"x" * source.written  # sent although paused
    assert not source.resumed.called  # not from inside write()
    harness.wait(source.resumed)
    assert not source.resumed_inside_write


@implementer(IPullProducer)
class PullSource:
    """A pull producer that counts resumeProducing calls and writes nothing."""

    def __init__(self) -> None:
        self.resumes = 0
        self.second: Deferred[None] = Deferred()

    def resumeProducing(self) -> None:
        self.resumes += 1
        if self.resumes == 2:
            self.second.callback(None)

    def stopProducing(self) -> None:
        pass


def test_pull_producer_registered_after_an_inline_write_is_resumed_on_the_next_turn(harness: Harness) -> None:
    """As with a buffered write, a drained buffer asks a pull producer for more (Twisted's contract)."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    transport.write(b"data")
    source = PullSource()
    transport.registerProducer(source, False)
    assert source.resumes == 1  # registerProducer's own call
    harness.wait(source.second)
    assert recv_exactly(peer, 4) == b"data"


def reset_by_peer(peer: socket.socket, proto: Recorder) -> None:
    """Close ``peer`` with an RST and wait (in the kernel, not the loop) until our side has seen it."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    transport: Any = proto.transport
    readable, _, _ = select.select([transport.fileno()], [], [], WAIT)
    assert readable


@pytest.mark.parametrize("then", ["nothing", "write-again", "loseConnection", "abortConnection"])
def test_send_error_reports_connection_lost_once_and_never_inside_write(harness: Harness, then: str) -> None:
    """A reset found by an inline send is reported on the next loop turn, exactly once."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    reset_by_peer(peer, proto)
    proto.in_write = True
    transport.write(b"into a reset connection")
    proto.in_write = False
    assert proto.lost_count == 0
    if then == "write-again":
        transport.write(b"more")
    elif then == "loseConnection":
        transport.loseConnection()
    elif then == "abortConnection":
        transport.abortConnection()
    harness.wait(proto.lost)
    for _ in range(5):
        harness.turn()
    assert proto.lost_count == 1
    assert not proto.lost_inside_write
    expected = ConnectionAborted if then == "abortConnection" else ConnectionLost
    assert proto.reason is not None and proto.reason.check(expected), proto.reason


def test_lose_connection_after_inline_writes_sends_everything_then_closes(harness: Harness) -> None:
    """loseConnection() right after writes that already left still closes, after the data."""
    proto, peer = tcp_server(harness)
    transport: Any = proto.transport
    transport.write(b"last words")
    transport.loseConnection()
    assert transport.disconnecting
    harness.wait(proto.lost)
    peer.settimeout(WAIT)
    assert recv_all(peer) == b"last words"


def recv_all(peer: socket.socket) -> bytes:
    data = bytearray()
    while chunk := peer.recv(65536):
        data += chunk
    return bytes(data)


@implementer(IHalfCloseableProtocol)
class HalfCloser(Recorder):
    """A Recorder that survives half-closes and notes its own."""

    write_closed = False

    def readConnectionLost(self) -> None:
        pass

    def writeConnectionLost(self) -> None:
        self.write_closed = True


def test_lose_write_connection_half_closes_after_inline_writes(harness: Harness) -> None:
    """loseWriteConnection() sends EOF after the data, and the other direction keeps working."""
    proto = HalfCloser()
    _, peer = tcp_server(harness, proto)
    transport: Any = proto.transport
    transport.write(b"request")
    transport.loseWriteConnection()
    read = read_in_thread_until_eof(harness, peer)
    assert read == b"request"
    assert proto.write_closed
    heard = proto.expect(len(b"still heard"))
    peer.sendall(b"still heard")
    harness.wait(heard)
    assert bytes(proto.received) == b"still heard"


def read_in_thread_until_eof(h: Harness, peer: socket.socket) -> bytes:
    done: Deferred[bytes] = Deferred()

    def read() -> None:
        peer.settimeout(WAIT)
        data = bytearray()
        while chunk := peer.recv(65536):
            data += chunk
        h.loop.call_soon_threadsafe(done.callback, bytes(data))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    data: bytes = h.wait(done)
    thread.join(WAIT)
    return data


class Echo(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Collector(protocol.Protocol):
    """Sends ``payload`` on connect and collects the echo until it has all of it."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.received = bytearray()
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.payload)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if len(self.received) == len(self.payload):
            assert self.transport is not None
            self.transport.loseConnection()
            self.done.callback(bytes(self.received))


@implementer(IOpenSSLContextFactory)
class PEMContext:
    """An old-style context factory reading PEM files itself.

    Twisted's ``CertificateOptions`` hands pyOpenSSL ``X509`` objects over,
    which pyOpenSSL now deprecates (and warnings are errors here).
    """

    def __init__(self, cert: Path, key: Path | None = None) -> None:
        self.cert, self.key = cert, key

    def getContext(self) -> SSL.Context:
        context = SSL.Context(SSL.TLS_METHOD)
        if self.key is None:  # a client that trusts exactly this certificate
            context.load_verify_locations(str(self.cert))
            context.set_verify(SSL.VERIFY_PEER, lambda *args: bool(args[-1]))
        else:
            context.use_certificate_file(str(self.cert))
            context.use_privatekey_file(str(self.key))
        return context


def test_tls_round_trip_of_more_than_the_socket_buffers(harness: Harness, tmp_path: Path) -> None:
    """TLSMemoryBIOProtocol writes to the TCP transport through the inline path; 4 MiB echo back intact."""
    cert_path, key_path = self_signed(tmp_path)
    # clock=: the TLS write aggregator must not import (and so install) the global reactor.
    echo = protocol.Factory.forProtocol(Echo)
    server = TLSMemoryBIOFactory(PEMContext(cert_path, key_path), False, echo, harness.reactor)
    port = harness.reactor.listenTCP(0, server, interface="127.0.0.1")
    harness.closers.append(port.stopListening)
    payload = bytes(range(256)) * (16 * 1024)
    client = Collector(payload)
    tls_client = TLSMemoryBIOFactory(PEMContext(cert_path), True, factory_for(client), harness.reactor)
    harness.reactor.connectTCP("127.0.0.1", port.getHost().port, tls_client)
    assert harness.wait(client.done) == payload


@implementer(IHandshakeListener)
class TLSRecorder(Recorder):
    """A Recorder that also fires ``handshaken`` once TLS is up."""

    def __init__(self) -> None:
        super().__init__()
        self.handshaken: Deferred[None] = Deferred()

    def handshakeCompleted(self) -> None:
        self.handshaken.callback(None)


def test_peer_reads_a_tls_write_before_the_loop_turns(harness: Harness, tmp_path: Path) -> None:
    """listenSSL's TLS encrypts and sends at once (Twisted's default TLS waits a reactor iteration)."""
    cert_path, key_path = self_signed(tmp_path)
    server = TLSRecorder()
    port = harness.reactor.listenSSL(0, factory_for(server), PEMContext(cert_path, key_path), interface="127.0.0.1")
    harness.closers.append(port.stopListening)
    context = ssl.create_default_context(cafile=str(cert_path))
    peer = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=WAIT)
    harness.closers.append(peer.close)
    client_done: Deferred[ssl.SSLSocket] = Deferred()

    def handshake() -> None:  # blocking, so in a thread while the loop runs the server side
        tls = context.wrap_socket(peer, server_hostname="127.0.0.1")
        harness.loop.call_soon_threadsafe(client_done.callback, tls)

    thread = threading.Thread(target=handshake, daemon=True)
    thread.start()
    tls_peer: ssl.SSLSocket = harness.wait(client_done)
    harness.closers.append(tls_peer.close)
    thread.join(WAIT)
    harness.wait(server.handshaken)
    assert server.transport is not None
    server.transport.write(b"hello")
    assert tls_peer.recv(5) == b"hello"


def test_unix_round_trip_of_more_than_the_socket_buffers(harness: Harness, tmp_path: Path) -> None:
    """listenUNIX/connectUNIX, both ends on BridgeReactor: 4 MiB echo back intact."""
    path = str(tmp_path / "echo.sock")
    port = harness.reactor.listenUNIX(path, protocol.Factory.forProtocol(Echo))
    harness.closers.append(port.stopListening)
    payload = bytes(range(256)) * (16 * 1024)
    client = Collector(payload)
    harness.reactor.connectUNIX(path, factory_for(client))
    assert harness.wait(client.done) == payload
