"""Drive BridgeReactor's write path with a Twisted client and server; print JSON results."""

from __future__ import annotations

import json

from bridge import install_reactor

install_reactor()

from twisted.internet import protocol, reactor  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402

SIZE = 8 * 1024 * 1024
results: dict[str, object] = {"reactor": type(reactor).__name__}


class Sink(protocol.Protocol):
    def connectionMade(self) -> None:
        self.received = 0

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        if self.received == SIZE:
            self.transport.write(b"done")  # type: ignore[union-attr]


class Source(protocol.Protocol):
    def connectionMade(self) -> None:
        # One write far beyond the socket buffer: the inline send takes part,
        # the rest must go out once the socket is watched for writability.
        self.transport.write(b"x" * SIZE)  # type: ignore[union-attr]
        results["writers_after_write"] = len(reactor.getWriters())

    def dataReceived(self, data: bytes) -> None:
        results["reply"] = data.decode()
        self.transport.loseConnection()  # type: ignore[union-attr]
        self.factory.finished.callback(None)


server_factory = protocol.ServerFactory.forProtocol(Sink)
port = reactor.listenTCP(0, server_factory, interface="127.0.0.1")  # type: ignore[arg-type]
client_factory = protocol.ClientFactory.forProtocol(Source)
client_factory.finished = Deferred()  # type: ignore[attr-defined]
reactor.connectTCP("127.0.0.1", port.getHost().port, client_factory)  # type: ignore[attr-defined, arg-type]


def watched() -> int:
    return len([w for w in reactor.getWriters() if getattr(w, "connected", False)])


def done(_: object, turns: int = 0) -> None:
    """Wait (a bounded number of loop turns) for the closing connections to leave the writer set."""
    if watched() and turns < 1000:
        reactor.callLater(0, done, None, turns + 1)
        return
    results["writers_at_end"] = watched()
    reactor.stop()


client_factory.finished.addCallback(done)  # type: ignore[attr-defined]
reactor.callLater(30, reactor.stop)
reactor.run()
print(json.dumps(results))
