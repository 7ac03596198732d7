"""One ASGI WebSocket connection on Twisted: the upgrade, the wire protocol, flow control, timers.

``bridge.websocket`` decides which requests upgrade and keeps the open
connections; a ``WebSocketSession`` runs one of them through its sans-IO
``WebSocketCycle``.  The app call's lifecycle (task, disconnect grace,
waits) is ``bridge._app_call.AppCall``, shared with HTTP; timers (close
handshake, pings) run on the resource's injected clock.

Everything here runs on the reactor thread, which is the asyncio loop's
thread.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IProtocol, IPushProducer, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from bridge._app_call import AppCall, Outcome, Runner, yield_to_loop
from bridge._options import InFlight
from bridge._ws_actions import AcceptUpgrade, Action, AwaitPeerClose, CloseTransport, SendBytes, StartDenial
from bridge._ws_cycle import Phase, WebSocketCycle
from bridge.errors import ASGIProtocolError, ClientDisconnected
from bridge.types import Message, Scope

_log = Logger(namespace="bridge.websocket")

#: After our close frame, how long the peer has to answer (and the socket to
#: flush) before the connection is aborted.  The ``websockets`` library's
#: ``close_timeout`` default is the same.
CLOSE_TIMEOUT = 10.0


@implementer(IProtocol, IPushProducer)
class WebSocketSession:
    """One WebSocket connection: the app task, the wire protocol, the timers.

    Before the upgrade it is the request's push producer (the denial body is
    flow-controlled like any response); after it, it is the protocol the
    channel hands its transport to, and that transport's push producer, so
    ``pauseProducing`` makes the next ``send()`` wait.

    Memory held per connection is bounded whatever the peer does: reading
    the socket stops while the app has ``BACKLOG_BYTES`` (1 MiB, counted as
    object sizes) or ``BACKLOG_MESSAGES`` undelivered, and while the
    transport has paused us (its buffer is over Twisted's 64 KiB
    ``bufferSize``).  What was read but not parsed stays in wsproto's buffer
    (at most one 64 KiB read), so a peer that sends pings and never reads
    makes us hold that buffer, the paused transport's and the pongs for one
    read: under 256 KiB per connection (``test_websocket_memory.py``
    measures it).  See ``bridge._ws_inbox`` for the message being
    reassembled and ``bridge._ws_deflate`` for inflation.

    ``send()`` writes its frame to the transport before it returns, then
    waits only while the transport has paused us.
    """

    def __init__(
        self, runner: Runner, sessions: InFlight, request: Request, scope: Scope, cycle: WebSocketCycle
    ) -> None:
        self._runner = runner
        self._options = runner.options
        self._clock = runner.clock
        self._sessions = sessions
        self._request = request
        self._channel: Any = request.channel
        self._tcp: Any = self._channel.transport
        self.scope = scope
        self.cycle = cycle
        self._call = AppCall(runner, self._app_done, self._label, quiet=self._closed_already)
        #: The wire protocol's transport, once the channel was handed over.
        self.transport: ITransport | None = None
        self._connected = True
        self._reading_paused = False
        self._ping_timer: IDelayedCall | None = None
        self._pong_timer: IDelayedCall | None = None
        self._teardown_timer: IDelayedCall | None = None

    def start(self) -> None:
        request = self._request
        request.notifyFinish().addErrback(self._lost_before_upgrade)
        request.registerProducer(self, True)
        self._sessions.add(self)
        self._call.start(self._runner.loop, self._runner.app, self.scope, self.receive, self.send)

    # -- the app's receive/send -----------------------------------------------

    async def receive(self) -> Message:
        """The next message; after the close, ``websocket.disconnect`` on every call.

        Like Uvicorn, a call after the disconnect was delivered gets the same
        ``websocket.disconnect`` again, not an error nor a wait for ever; it
        first lets the loop turn, so an app that loops on ``receive()``
        without looking cannot starve the other connections.
        """
        while True:
            message = self.cycle.next_receive()
            if message is not None:
                if message["type"] == "websocket.disconnect":
                    await yield_to_loop()  # answered from state: yield, as a real wait would
                elif self._reading_paused:
                    self._flow()
                return message
            await self._call.news()

    async def send(self, message: Message) -> None:
        try:
            actions = self.cycle.app_send(message)
        except ASGIProtocolError as e:
            _log.error("ASGI protocol violation on {call}: {error}", call=self._label(), error=str(e))
            raise
        self._apply(actions)
        if self._connected:
            await self._call.writable()

    # -- carrying out actions -------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendBytes):
                self._tcp.write(action.data)
            elif isinstance(action, AcceptUpgrade):
                self._upgrade(action.data)
            elif isinstance(action, StartDenial):
                self._log_access(action.status)
                self._tcp.write(action.data)
            elif isinstance(action, AwaitPeerClose):
                self._arm_teardown()
            elif isinstance(action, CloseTransport):
                self._close_transport()

    def _upgrade(self, response: bytes) -> None:
        """Take the connection over from the HTTP channel, then send the 101."""
        self._request.unregisterProducer()
        self._log_access(101)
        self._channel._protocolUpgradeForWebsockets(self)  # calls makeConnection
        self._tcp.write(response)
        self._schedule_ping()

    def _log_access(self, status: int) -> None:
        """One access-log line per handshake, as ``Request.finish`` would write."""
        request = self._request
        request.setResponseCode(status)
        factory = getattr(self._channel, "factory", None)
        if factory is not None:
            factory.log(request)

    def _close_transport(self) -> None:
        if self.transport is None:
            self._request.unregisterProducer()
            self._channel.loseConnection()
        else:
            # A TLS transport postpones its shutdown while a producer is registered.
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
            self.transport.loseConnection()
        self._arm_teardown()

    def _arm_teardown(self) -> None:
        if self._teardown_timer is None and self._connected:
            self._teardown_timer = self._clock.callLater(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self._teardown_timer = None
        _log.info("{call}: peer did not complete the close; aborting", call=self._label())
        self._tcp.abortConnection()

    def _flow(self) -> None:
        """Follow the holds on reading: parse what waits once they lift, pause the socket while one holds.

        Bytes wait unparsed only while reading is paused, so nothing is
        pumped on the common path.
        """
        cycle = self.cycle
        cycle.replies_blocked = self._call.paused
        if self._reading_paused and not cycle.holding_back:
            self._apply(cycle.pump())
            self._call.wake()
            self._check_pong()
        held = cycle.holding_back and self._connected
        if held != self._reading_paused:
            self._set_reading(not held)

    def _set_reading(self, on: bool) -> None:
        """Stop or resume reading the socket."""
        self._reading_paused = not on
        reader = self.transport
        if reader is None or not IPushProducer.providedBy(reader):
            return
        if on:
            reader.resumeProducing()
        else:
            reader.pauseProducing()

    def server_close(self, code: int, reason: str) -> None:
        self._apply(self.cycle.server_close(code, reason))
        self._call.wake()

    # -- keepalive -------------------------------------------------------------

    def _schedule_ping(self) -> None:
        interval = self._options.ws_ping_interval
        if interval is not None and self._connected:
            self._ping_timer = self._clock.callLater(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        actions = self.cycle.ping()
        if not actions:
            return
        self._apply(actions)
        timeout = self._options.ws_ping_timeout
        if timeout is None:
            self._schedule_ping()
        else:
            self._pong_timer = self._clock.callLater(timeout, self._pong_overdue)

    def _pong_overdue(self) -> None:
        self._pong_timer = None
        if not self.cycle.awaiting_pong or self.cycle.inbox.backlogged:
            # Answered; or we stopped reading because our app is behind and
            # cannot see the pong: our slowness, not the peer's.  A peer that
            # does not read what we send (replies blocked) is closed.
            self._schedule_ping()
            return
        _log.info("{call}: no pong within {t:g} s; closing", call=self._label(), t=self._options.ws_ping_timeout)
        self._apply(self.cycle.keepalive_timeout())
        self._call.wake()

    def _check_pong(self) -> None:
        if self._pong_timer is not None and not self.cycle.awaiting_pong:
            _cancel(self._pong_timer)
            self._pong_timer = None
            self._schedule_ping()

    # -- IProtocol: the upgraded connection (called by Twisted) ----------------

    def makeConnection(self, transport: ITransport) -> None:
        self.transport = transport
        self.connectionMade()

    def connectionMade(self) -> None:
        """Become the transport's producer in place of the HTTP channel."""
        transport: Any = self.transport
        transport.unregisterProducer()
        transport.registerProducer(self, True)

    def dataReceived(self, data: bytes) -> None:
        self._apply(self.cycle.receive_data(data))
        self._call.wake()
        if self.cycle.holding_back and not self._reading_paused:
            self._set_reading(False)
        self._check_pong()

    def connectionLost(self, reason: Failure) -> None:
        self._connection_gone()
        # The upgrade took HTTPChannel.connectionLost over, which would have
        # told the request; without this its notifyFinish() (and whatever the
        # site counts with it) would never fire.
        self._request.connectionLost(reason)

    # -- IPushProducer (called by Twisted) --------------------------------------

    def pauseProducing(self) -> None:
        self._call.pause()
        self.cycle.replies_blocked = True

    def resumeProducing(self) -> None:
        self._call.resume()
        self.cycle.replies_blocked = False
        if self.transport is not None:
            self._flow()

    def stopProducing(self) -> None:
        self._connection_gone()

    # -- endings --------------------------------------------------------------

    def _lost_before_upgrade(self, reason: Failure) -> None:
        """``notifyFinish`` failed: the connection dropped while still HTTP."""
        self._connection_gone()

    def _connection_gone(self) -> None:
        if not self._connected:
            return
        self._connected = False
        self.cycle.connection_lost()
        for timer in (self._ping_timer, self._pong_timer, self._teardown_timer):
            _cancel(timer)
        self._ping_timer = self._pong_timer = self._teardown_timer = None
        # Wakes receive() (websocket.disconnect) and send(), then cancels the
        # app if it still runs after the disconnect grace.
        self._call.connection_gone()

    def _closed_already(self, error: BaseException) -> bool:
        """A send() after the close raised ClientDisconnected: expected, not worth a traceback."""
        return isinstance(error, ClientDisconnected) and self.cycle.phase is Phase.CLOSED

    def _app_done(self, outcome: Outcome) -> None:
        if outcome.returned:
            if self.cycle.phase is Phase.HANDSHAKE:
                _log.error("ASGI app returned without accepting or refusing {call}", call=self._label())
            actions = self.cycle.app_returned()
        else:
            actions = self.cycle.app_failed()
        self._apply(actions)
        self._sessions.discard(self)

    def _label(self) -> str:
        return f"WebSocket {bytes(self.scope.get('raw_path') or b'').decode('latin-1')}"


def _cancel(timer: IDelayedCall | None) -> None:
    if timer is not None and timer.active():
        timer.cancel()


__all__ = ["CLOSE_TIMEOUT", "WebSocketSession"]
