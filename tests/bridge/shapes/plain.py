"""Shape (b): ``from twisted.internet import reactor`` at the top, after ``install_reactor()``,
with work scheduled at import time: a callLater, a callWhenRunning, a LoopingCall, a listening port, a client
connection to it, and a write on an adopted connection.  ``/events`` says what of it ran, once
the server's loop runs."""

import asyncio
import json
import socket
from typing import Any

import bridge

bridge.install_reactor()

from twisted.internet import protocol, reactor, task  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from bridge import TwistedResourceApp  # noqa: E402

EVENTS: list[str] = []


class Echo(protocol.Protocol):
    transport: Any
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


class Greeter(protocol.Protocol):
    transport: Any
    def connectionMade(self) -> None:
        self.transport.write(b"hello over connectTCP")

    def dataReceived(self, data: bytes) -> None:
        EVENTS.append(f"connectTCP echoed {data.decode()!r}")
        self.transport.loseConnection()


TICKS = [0]


def tick() -> None:
    TICKS[0] += 1
    if TICKS[0] == 2:
        EVENTS.append("LoopingCall ticked twice")


task.LoopingCall(tick).start(0.01, now=False)
reactor.callLater(0, EVENTS.append, "callLater ran")
reactor.callWhenRunning(EVENTS.append, "callWhenRunning ran")
listening = reactor.listenTCP(0, protocol.ServerFactory.forProtocol(Echo), interface="127.0.0.1")  # type: ignore[arg-type]
ECHO_PORT: int = listening.getHost().port  # type: ignore[attr-defined]
reactor.connectTCP("127.0.0.1", ECHO_PORT, protocol.ClientFactory.forProtocol(Greeter))  # type: ignore[arg-type]


class Writer(protocol.Protocol):
    def connectionMade(self) -> None:
        self.transport.write(b"written at import")  # type: ignore[union-attr]


class Reader(protocol.Protocol):
    def dataReceived(self, data: bytes) -> None:
        EVENTS.append(f"adoptStreamConnection got {data.decode()!r}")


# Both ends of a socket pair, connected at once: Writer's write is still waiting to be flushed
# when the reactor moves to the server's loop.
for end, speaker in zip(socket.socketpair(), (Writer, Reader), strict=True):
    reactor.adoptStreamConnection(end.fileno(), socket.AF_UNIX, protocol.ServerFactory.forProtocol(speaker))  # type: ignore[attr-defined]
    end.close()  # the reactor has its own duplicate


class Events(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        loop = asyncio.get_running_loop()
        answer = {
            "events": sorted(EVENTS),
            "echo_port": ECHO_PORT,
            "loop": type(loop).__module__.split(".")[0],
            "reactor_on_this_loop": getattr(reactor, "_asyncioEventloop", None) is loop,
        }
        return json.dumps(answer).encode()


root = Resource()
root.putChild(b"events", Events())
app = TwistedResourceApp(root)
