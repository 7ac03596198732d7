"""One ASGI WebSocket connection on Twisted: the app task, the wire protocol, the timers.

``bridge.websocket`` starts a ``WebSocketSession`` per upgrade request; the
session carries out what its sans-IO ``WebSocketCycle`` decides.  Everything
here runs on the reactor thread, which is the asyncio loop's thread.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IProtocol, IPushProducer, ITransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from bridge._flow import Wakeup, WriteGate
from bridge._ws_actions import AcceptUpgrade, Action, AwaitPeerClose, CloseTransport, SendBytes, StartDenial
from bridge._ws_cycle import Phase, WebSocketCycle
from bridge.errors import ASGIProtocolError, ClientDisconnected
from bridge.types import ASGIApp, Message, Scope

if TYPE_CHECKING:
    from bridge.websocket import WebSockets

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

    def __init__(self, owner: WebSockets, request: Request, scope: Scope, cycle: WebSocketCycle) -> None:
        self._owner = owner
        self._request = request
        self._channel: Any = request.channel
        self._tcp: Any = self._channel.transport
        self._loop = owner.resource.loop
        self.scope = scope
        self.cycle = cycle
        self.task: asyncio.Task[None] | None = None
        #: The wire protocol's transport, once the channel was handed over.
        self.transport: ITransport | None = None
        self._connected = True
        self._reading_paused = False
        self._wakeup = Wakeup(self._loop)
        self._gate = WriteGate(self._loop)
        self._grace_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._teardown_timer: asyncio.TimerHandle | None = None

    def start(self, app: ASGIApp) -> None:
        request = self._request
        request.notifyFinish().addErrback(self._lost_before_upgrade)
        request.registerProducer(self, True)
        self.task = asyncio.ensure_future(app(self.scope, self.receive, self.send), loop=self._loop)
        self.task.add_done_callback(self._app_done)

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
                    await asyncio.sleep(0)  # answered from state: yield, as a real wait would
                elif self._reading_paused:
                    self._flow()
                return message
            await self._wakeup.wait()

    async def send(self, message: Message) -> None:
        try:
            actions = self.cycle.app_send(message)
        except ASGIProtocolError as e:
            _log.error("ASGI protocol violation on WebSocket {uri}: {error}", uri=self._uri, error=str(e))
            raise
        self._apply(actions)
        if self._connected:
            await self._gate.wait()

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
            self._teardown_timer = self._loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self._teardown_timer = None
        _log.info("WebSocket {uri}: peer did not complete the close; aborting", uri=self._uri)
        self._tcp.abortConnection()

    def _flow(self) -> None:
        """Follow the holds on reading: parse what waits once they lift, pause the socket while one holds.

        Bytes wait unparsed only while reading is paused, so nothing is
        pumped on the common path.
        """
        cycle = self.cycle
        cycle.replies_blocked = self._gate.paused
        if self._reading_paused and not cycle.holding_back:
            self._apply(cycle.pump())
            self._wakeup.wake()
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
        self._wakeup.wake()

    # -- keepalive -------------------------------------------------------------

    def _schedule_ping(self) -> None:
        interval = self._owner.ping_interval
        if interval is not None and self._connected:
            self._ping_timer = self._loop.call_later(interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        actions = self.cycle.ping()
        if not actions:
            return
        self._apply(actions)
        timeout = self._owner.ping_timeout
        if timeout is None:
            self._schedule_ping()
        else:
            self._pong_timer = self._loop.call_later(timeout, self._pong_overdue)

    def _pong_overdue(self) -> None:
        self._pong_timer = None
        if not self.cycle.awaiting_pong or self.cycle.inbox.backlogged:
            # Answered; or we stopped reading because our app is behind and
            # cannot see the pong: our slowness, not the peer's.  A peer that
            # does not read what we send (replies blocked) is closed.
            self._schedule_ping()
            return
        _log.info("WebSocket {uri}: no pong within {t:g} s; closing", uri=self._uri, t=self._owner.ping_timeout)
        self._apply(self.cycle.keepalive_timeout())
        self._wakeup.wake()

    def _check_pong(self) -> None:
        if self._pong_timer is not None and not self.cycle.awaiting_pong:
            self._pong_timer.cancel()
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
        self._wakeup.wake()
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
        self._gate.pause()
        self.cycle.replies_blocked = True

    def resumeProducing(self) -> None:
        self._gate.resume()
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
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = self._teardown_timer = None
        self._wakeup.wake()
        self._gate.close()
        task = self.task
        if task is not None and not task.done() and self._grace_timer is None:
            # Give the app time to see websocket.disconnect, then cancel it.
            self._grace_timer = self._loop.call_later(self._owner.resource.disconnect_grace, task.cancel)

    def _app_done(self, task: asyncio.Task[None]) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if task.cancelled():
            actions = self.cycle.app_failed()
        elif (exc := task.exception()) is not None:
            if not (isinstance(exc, ClientDisconnected) and self.cycle.phase is Phase.CLOSED):
                _log.failure(
                    "Exception in ASGI application for WebSocket {uri}",
                    failure=Failure(exc, type(exc), exc.__traceback__),
                    uri=self._uri,
                )
            actions = self.cycle.app_failed()
        else:
            if self.cycle.phase is Phase.HANDSHAKE:
                _log.error("ASGI app returned without accepting or refusing WebSocket {uri}", uri=self._uri)
            actions = self.cycle.app_returned()
        self._apply(actions)
        self._owner.session_done(self)

    @property
    def _uri(self) -> str:
        return bytes(self.scope.get("raw_path") or b"").decode("latin-1")


__all__ = ["CLOSE_TIMEOUT", "WebSocketSession"]
