"""Twisted side of one ASGI HTTP request: carries out what ``HTTPCycle`` decides.

Everything here runs on the reactor thread, which is the asyncio loop's
thread: the app is an asyncio Task on that loop, ``receive``/``send`` are
coroutines on it, and Twisted calls (``request.write``, producer callbacks,
``notifyFinish``) arrive on it too, so no locking is needed.

``send()`` returns once its bytes are handed to the transport, which on the
bridge's reactor (``bridge._reactor``) means to the socket, unless the
kernel buffer is full: then the transport pauses this producer and ``send()``
waits until it drains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request
from zope.interface import implementer

from bridge._app_call import AppCall, Outcome, Runner, yield_to_loop
from bridge._body import BodyPipe, buffered_length, declared_length
from bridge._channel import ChannelAnswered
from bridge._http_cycle import (
    AbortConnection,
    Action,
    FinishResponse,
    HTTPCycle,
    SendFile,
    StartResponse,
    WriteBody,
    error_response,
)
from bridge._pathsend import open_checked, send_file
from bridge.errors import ASGIProtocolError, ClientDisconnected
from bridge.types import Message, Scope

_log = Logger(namespace="bridge.http")

#: Body bytes held for the app before reading from the network pauses.  The
#: cycle keeps them in one ``bytearray`` however the client sliced them, so a
#: request holds at most this plus one network read (64 KiB) of body.
BODY_HIGH_WATER = 256 * 1024
#: Chunk size when feeding a body Twisted has already buffered to a file.
BODY_READ_SIZE = 64 * 1024


@implementer(IPushProducer)
class HTTPResponder:
    """Runs one app call for one ``twisted.web.server.Request``.

    It is the request's push producer, so Twisted's flow control reaches
    ``send()``: ``pauseProducing`` makes the next ``send()`` wait after its
    write, ``resumeProducing`` lets it return.
    """

    __slots__ = (
        "_body_file",
        "_body_pipe",
        "_call",
        "_channel",
        "_disconnected",
        "_finished",
        "_producer_registered",
        "_reading_paused",
        "_request",
        "_runner",
        "_upload_done",
        "cycle",
        "scope",
    )

    def __init__(self, runner: Runner, request: Request, scope: Scope) -> None:
        self._runner = runner
        self._request = request
        self._channel = request.channel
        self.scope = scope
        self.cycle = HTTPCycle(scope["method"], pathsend=True)
        self._call = AppCall(runner, self._app_done, self._label)
        self._reading_paused = False
        self._producer_registered = False
        self._body_file: Any = None
        self._body_pipe: BodyPipe | None = None
        self._upload_done = False
        #: The response is complete or abandoned: write nothing more.
        self._finished = False
        #: The connection itself is gone (not just "the app was told so").
        self._disconnected = False

    # -- start ----------------------------------------------------------------

    def start(self) -> None:
        runner, request = self._runner, self._request
        content = request.content
        if isinstance(content, BodyPipe):
            self._body_pipe = content
            content.attach(self)
        else:
            self._body_file = content
            self._upload_done = True
        limit = runner.options.max_body_size
        if limit is not None and max(declared_length(request), buffered_length(content)) > limit:
            self.refuse(413, f"request body exceeds the {limit}-byte limit")
            return
        request.notifyFinish().addErrback(self._connection_lost)
        request.registerProducer(self, True)
        self._producer_registered = True
        runner.in_flight.add(self)
        self._call.start(runner.loop, runner.app, self.scope, self.receive, self.send)
        if runner.response_deadlines is not None:
            runner.response_deadlines.set(self, self._response_timed_out)

    def refuse(self, status: int, reason: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Answer ``status`` without running the app (413 by declared length, 503)."""
        request = self._request
        # Twisted would send "100 Continue" for a body we are about to refuse.
        request.requestHeaders.removeHeader(b"expect")
        if isinstance(request.content, BodyPipe):
            self._body_pipe = request.content  # _reject detaches it: the upload is dropped, not kept
        # The answer goes out on the next loop turn; the client may be gone by then.
        request.notifyFinish().addErrback(self._lost_while_refusing)
        self._reject(status, reason, headers)

    def _lost_while_refusing(self, reason: Failure) -> None:
        self._disconnected = True

    # -- body from the client (BodyConsumer) ----------------------------------

    def body_chunk(self, data: bytes) -> None:
        limit = self._runner.options.max_body_size
        if self._body_pipe is not None and limit is not None and self._body_pipe.received > limit:
            self._reject(413, f"request body exceeds the {limit}-byte limit")
            return
        self.cycle.body_received(data)
        if self.cycle.buffered > BODY_HIGH_WATER and not self._reading_paused:
            self._set_reading(False)
        self._call.wake()

    def body_end(self) -> None:
        self._upload_done = True
        self.cycle.body_finished()
        self._call.wake()

    def _set_reading(self, on: bool) -> None:
        """Pause or resume reading the request body from the network."""
        self._reading_paused = not on
        channel = self._channel
        # HTTP/1: the TCP transport.  HTTP/2: the stream, whose pause withholds
        # flow-control window updates for this stream only.
        target: Any = channel.transport if isinstance(channel, HTTPChannel) else channel
        if target is None:
            return
        if on:
            target.resumeProducing()
        else:
            target.pauseProducing()

    # -- the app's receive/send -----------------------------------------------

    async def receive(self) -> Message:
        """The next ``http.request``, or ``http.disconnect`` once the response is done or the client left.

        Answers from state (a disconnect) yield to the loop first: an app
        that calls ``receive()`` in a loop must not keep the loop from turning.
        """
        cycle = self.cycle
        while True:
            if self._body_file is not None and not cycle.body_complete:
                self._pull_buffered_body()
            message = cycle.next_receive()
            if message is not None:
                if message["type"] == "http.disconnect":
                    await yield_to_loop()
                elif self._reading_paused and cycle.buffered == 0:
                    self._set_reading(True)
                return message
            await self._call.news()

    def _pull_buffered_body(self) -> None:
        chunk = self._body_file.read(BODY_READ_SIZE)
        if chunk:
            self.cycle.body_received(chunk)
        else:
            self.cycle.body_finished()

    async def send(self, message: Message) -> None:
        cycle = self.cycle
        if cycle.client_gone:
            raise ClientDisconnected("the client closed the connection")
        try:
            actions = cycle.app_send(message)
        except ASGIProtocolError as e:
            _log.error("ASGI protocol violation on {call}: {error}", call=self._label(), error=str(e))
            raise
        if actions and isinstance(actions[-1], SendFile):
            await self._send_file(actions)
        else:
            for action in actions:
                self._apply(action)
        call = self._call
        if call.paused and not self._finished:
            await call.writable()
            if cycle.client_gone:
                raise ClientDisconnected("the client closed the connection")

    # -- carrying out actions -------------------------------------------------

    def _apply(self, action: Action) -> None:
        if self._finished:
            return
        if type(action) is WriteBody:
            self._request.write(action.data)
        elif type(action) is StartResponse:
            self._start_response(action)
        elif type(action) is FinishResponse:
            if action.close:
                self._no_keep_alive()
            self._finish()
        elif type(action) is AbortConnection:
            _log.warn("Aborting response to {call}: {reason}", call=self._label(), reason=action.reason)
            self._abort()

    def _start_response(self, action: StartResponse) -> None:
        self._cancel_response_timer()
        request = self._request
        request.setResponseCode(action.status)
        # Twisted would add "Content-Type: text/html" to an app response
        # that has none; ASGI apps decide their own headers.
        request.defaultContentType = None
        headers = request.responseHeaders
        for name, _ in action.headers:
            if name in (b"server", b"date"):
                # The app's Server/Date replace Twisted's defaults.
                headers.removeHeader(name)
        for name, value in action.headers:
            headers.addRawHeader(name, value)
        if action.close or not self._upload_done:
            # Answering before the upload is complete: the rest of the body
            # would be parsed as the next request, so this connection ends here.
            self._no_keep_alive()
            if isinstance(self._channel, HTTPChannel):
                headers.setRawHeaders(b"connection", [b"close"])

    def _no_keep_alive(self) -> None:
        if isinstance(self._channel, HTTPChannel):
            self._channel.persistent = False

    async def _send_file(self, actions: list[Action]) -> None:
        send_action = actions[-1]
        assert isinstance(send_action, SendFile)
        try:
            # Opened before anything is applied, so that a bad file can still be a clean 500.
            f = open_checked(send_action.path, self.cycle.declared_length)
        except ValueError as e:
            error = f"http.response.pathsend: {e}"
            _log.error("ASGI protocol violation on {call}: {error}", call=self._label(), error=error)
            for action in error_response(500):  # nothing was written: the held start is dropped
                self._apply(action)
            raise ASGIProtocolError(error) from None
        for action in actions[:-1]:
            self._apply(action)
        self._unregister_producer()
        try:
            await send_file(f, self._request, not self._disconnected)
        except BaseException as e:
            if not self._disconnected:
                # Cancelled or failed mid-file: the response can never be completed, and
                # Twisted's idle timeout is off while a request is handled: close it.
                self._abort()
            if isinstance(e, Exception) and self.cycle.client_gone:
                raise ClientDisconnected("the client closed the connection") from e
            raise
        self._finish()

    def _unregister_producer(self) -> None:
        if self._producer_registered:
            self._producer_registered = False
            self._request.unregisterProducer()

    def _finish(self) -> None:
        self._unregister_producer()
        self._finished = True
        if not self._disconnected:
            self._request.finish()
        # A receive() parked after the whole body now answers http.disconnect.
        self._call.wake()

    def _abort(self) -> None:
        self._unregister_producer()
        self._finished = True
        channel = self._channel
        if isinstance(channel, HTTPChannel):
            channel.loseConnection()
        else:
            channel.abortConnection()

    def _reject(self, status: int, reason: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Answer ``status`` if we still can, else abort; the app sees a disconnect."""
        _log.info("Answering {call} with {status}: {reason}", call=self._label(), status=status, reason=reason)
        if self._body_pipe is not None:
            self._body_pipe.detach()
        actions = self.cycle.reject(status, headers)
        self.cycle.client_disconnected()
        # Never write from inside Twisted's header parser: do it on the next turn.
        self._runner.clock.callLater(0, self._apply_all, actions)
        if self._call.task is None:
            return
        if status == 504:
            self._call.cancel()
        else:
            self._call.connection_gone()

    def _response_timed_out(self) -> None:
        timeout = self._runner.options.response_timeout
        self._reject(504, f"the app did not start a response within {timeout:g} s")

    def _apply_all(self, actions: list[Action]) -> None:
        for action in actions:
            self._apply(action)

    # -- producer interface (called by Twisted) --------------------------------

    def pauseProducing(self) -> None:
        self._call.pause()

    def resumeProducing(self) -> None:
        self._call.resume()

    def stopProducing(self) -> None:
        self._client_gone(answered=False)

    # -- endings --------------------------------------------------------------

    def _connection_lost(self, reason: Failure) -> None:
        # ChannelAnswered: the channel itself answered (400, 408...); the
        # client did not abandon anything, but nothing more may be written.
        self._client_gone(answered=reason.check(ChannelAnswered) is not None)

    def _client_gone(self, answered: bool) -> None:
        if self._disconnected:
            return
        self._disconnected = True
        if not self._finished and not answered:
            self._runner.in_flight.abandoned += 1
        self.cycle.client_disconnected()
        self._finished = True
        self._producer_registered = False
        self._cancel_response_timer()  # nobody is waiting: the grace period decides, not a 504
        if self._body_pipe is not None:
            self._body_pipe.detach()
        self._call.connection_gone()

    def _cancel_response_timer(self) -> None:
        if self._runner.response_deadlines is not None:
            self._runner.response_deadlines.clear(self)

    def _app_done(self, outcome: Outcome) -> None:
        self._cancel_response_timer()
        if outcome.cancelled:
            actions = self.cycle.app_failed("the app task was cancelled")
        elif outcome.error is not None:
            actions = self.cycle.app_failed(f"the app raised {type(outcome.error).__name__}")
        else:
            actions = self.cycle.app_returned()
            if actions:
                _log.error("ASGI app returned without completing the response to {call}", call=self._label())
        self._apply_all(actions)
        self._unregister_producer()
        self._runner.in_flight.discard(self)

    def _label(self) -> str:
        return f"{self.scope['method']} {bytes(self.scope.get('raw_path') or b'').decode('latin-1')}"


__all__ = ["BODY_HIGH_WATER", "HTTPResponder"]
