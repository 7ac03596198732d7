"""A ``twisted.web.websocket`` protocol as Twisted's howto writes one, with a few commands.

Text messages are commands or echoed: ``close CODE`` closes with that code, ``ping PAYLOAD``
pings the client, ``fail`` raises, ``stream N`` sends N binary messages of 64 KiB from a push producer (so a
slow reader pauses it) and then ``streamed N, paused P``.  Binary messages are echoed.  How
each connection ended and how far each stream got are kept for ``/ws-state``.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.interfaces import IPushProducer
from twisted.python.failure import Failure
from twisted.web.websocket import WebSocketTransport
from zope.interface import implementer

CHUNK = bytes(range(256)) * 256

#: How connections ended: the reason each ``connectionLost`` got, in order.
ENDINGS: list[str] = []

#: Every ``stream`` command's producer, for ``/ws-state``.
STREAMS: list[Streamer] = []


@implementer(IPushProducer)
class Streamer:
    """Sends ``count`` binary messages, one per reactor turn, while not paused."""

    def __init__(self, transport: WebSocketTransport, count: int) -> None:
        self.transport, self.remaining, self.count = transport, count, count
        self.paused = False
        self.pauses = 0
        self.call: Any = None
        STREAMS.append(self)

    def start(self) -> None:
        self.transport.attachProducer(self)
        self._schedule()

    def _schedule(self) -> None:
        if self.call is None and not self.paused:
            self.call = reactor.callLater(0, self._send)

    def _send(self) -> None:
        self.call = None
        if self.paused:
            return
        if not self.remaining:
            self.transport.detachProducer()
            self.transport.sendTextMessage(f"streamed {self.count}, paused {self.pauses}")
            return
        self.remaining -= 1
        self.transport.sendBytesMessage(CHUNK)
        self._schedule()

    def pauseProducing(self) -> None:
        self.paused = True
        self.pauses += 1

    def resumeProducing(self) -> None:
        self.paused = False
        self._schedule()

    def stopProducing(self) -> None:
        self.paused = True
        if self.call is not None:
            self.call.cancel()
            self.call = None


class CommandProtocol:
    transport: WebSocketTransport

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        self.transport = transport

    def negotiationFinished(self) -> None:
        self.transport.sendTextMessage("welcome")

    def textMessageReceived(self, message: str) -> None:
        command, _, argument = message.partition(" ")
        if command == "close":
            self.transport.loseConnection(int(argument))
        elif command == "ping":
            self.transport.ping(argument.encode())
        elif command == "stream":
            Streamer(self.transport, int(argument)).start()
        elif command == "fail":
            raise RuntimeError("legacy WebSocket protocol failed on purpose")
        else:
            self.transport.sendTextMessage(message)

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        self.transport.sendBytesMessage(bytes(data))

    def pongReceived(self, payload: bytes) -> None:
        self.transport.sendTextMessage(f"pong {payload.decode()}")

    def connectionLost(self, reason: Failure) -> None:
        ENDINGS.append(f"{type(reason.value).__name__}: {reason.getErrorMessage()}")


class EchoFactory:
    def buildProtocol(self, request: Any) -> CommandProtocol:
        return CommandProtocol()
