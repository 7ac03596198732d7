"""Twisted side of one ASGI HTTP request: carries out what ``HTTPCycle`` decides.

Everything here runs on the reactor thread, which is the asyncio loop's
thread: the app is an asyncio Task on that loop, ``receive``/``send`` are
coroutines on it, and Twisted calls (``request.write``, producer callbacks,
``notifyFinish``) arrive on it too, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request
from zope.interface import implementer

from bridge._aio import as_future
from bridge._body import BodyPipe
from bridge._flow import Wakeup, WriteGate
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
from bridge.errors import ASGIProtocolError, ClientDisconnected
from bridge.types import ASGIApp, Message, Scope

if TYPE_CHECKING:
    from bridge.resource import ASGIResource

_log = Logger(namespace="bridge.http")

#: Above this many buffered, undelivered body bytes we stop reading the socket.
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

    def __init__(self, resource: ASGIResource, request: Request, scope: Scope) -> None:
        self._resource = resource
        self._request = request
        self._channel = request.channel
        self._loop = resource.loop
        self.scope = scope
        self.cycle = HTTPCycle(scope["method"], pathsend=True)
        self.task: asyncio.Task[None] | None = None
        self._wakeup = Wakeup(self._loop)
        self._gate = WriteGate(self._loop)
        self._reading_paused = False
        self._producer_registered = False
        self._body_file: Any = None
        self._body_pipe: BodyPipe | None = None
        self._upload_done = False
        self._grace_timer: asyncio.TimerHandle | None = None
        self._response_timer: asyncio.TimerHandle | None = None
        #: The response is complete or abandoned: write nothing more.
        self._finished = False
        #: The connection itself is gone (not just "the app was told so").
        self._disconnected = False

    # -- start ----------------------------------------------------------------

    def start(self, app: ASGIApp) -> None:
        request = self._request
        content = request.content
        if isinstance(content, BodyPipe):
            self._body_pipe = content
            content.attach(self)
        else:
            self._body_file = content
            self._upload_done = True
        limit = self._resource.max_body_size
        if limit is not None and max(_declared_length(request), _buffered_length(content)) > limit:
            self.refuse(413, f"request body exceeds the {limit}-byte limit")
            return
        request.notifyFinish().addCallbacks(self._finished_ok, self._connection_lost)
        request.registerProducer(self, True)
        self._producer_registered = True
        self.task = asyncio.ensure_future(app(self.scope, self.receive, self.send), loop=self._loop)
        self.task.add_done_callback(self._app_done)
        timeout = self._resource.response_timeout
        if timeout is not None:
            self._response_timer = self._loop.call_later(timeout, self._response_timed_out)

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
        limit = self._resource.max_body_size
        if self._body_pipe is not None and limit is not None and self._body_pipe.received > limit:
            self._reject(413, f"request body exceeds the {limit}-byte limit")
            return
        self.cycle.body_received(data)
        if self.cycle.buffered > BODY_HIGH_WATER and not self._reading_paused:
            self._set_reading(False)
        self._wakeup.wake()

    def body_end(self) -> None:
        self._upload_done = True
        self.cycle.body_finished()
        self._wakeup.wake()

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
        while True:
            if self._body_file is not None and not self.cycle.body_complete:
                self._pull_buffered_body()
            message = self.cycle.next_receive()
            if message is not None:
                if self._reading_paused and self.cycle.buffered == 0:
                    self._set_reading(True)
                return message
            await self._wakeup.wait()

    def _pull_buffered_body(self) -> None:
        chunk = self._body_file.read(BODY_READ_SIZE)
        if chunk:
            self.cycle.body_received(chunk)
        else:
            self.cycle.body_finished()

    async def send(self, message: Message) -> None:
        if self.cycle.client_gone:
            raise ClientDisconnected("the client closed the connection")
        try:
            actions = self.cycle.app_send(message)
        except ASGIProtocolError as e:
            _log.error("ASGI protocol violation on {uri}: {error}", uri=self._uri, error=str(e))
            raise
        if actions and isinstance(actions[-1], SendFile):
            # Opened before anything is applied, so that a bad file can still be a clean 500.
            file = self._open_for_pathsend(actions[-1].path)
            self._apply_all(actions[:-1])
            await self._send_file(file)
        else:
            self._apply_all(actions)
        if self._gate.paused and not self._finished:
            await self._gate.wait()
            if self.cycle.client_gone:
                raise ClientDisconnected("the client closed the connection")

    # -- carrying out actions -------------------------------------------------

    def _apply(self, action: Action) -> None:
        if self._finished:
            return
        request = self._request
        if isinstance(action, WriteBody):
            request.write(action.data)
        elif isinstance(action, StartResponse):
            self._start_response(action)
        elif isinstance(action, FinishResponse):
            if action.close:
                self._no_keep_alive()
            self._finish()
        elif isinstance(action, AbortConnection):
            _log.warn("Aborting response to {uri}: {reason}", uri=self._uri, reason=action.reason)
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

    def _open_for_pathsend(self, path: str) -> BinaryIO:
        """Open the file for ``http.response.pathsend``, or answer 500 and raise.

        The file must exist and match the app's ``content-length``: FileSender
        sends it to EOF, and a mismatch would either put bytes of this body where
        the client expects the next response or leave the response unfinished.
        """
        try:
            f = open(path, "rb")  # noqa: SIM115 -- closed by _send_file or below
        except OSError as e:
            problem = f"cannot open {path!r}: {e}"
        else:
            size, declared = os.fstat(f.fileno()).st_size, self.cycle.declared_length
            if declared is None or size == declared:
                return f
            f.close()
            problem = f"{path!r} has {size} bytes but content-length is {declared}"
        error = f"http.response.pathsend: {problem}"
        _log.error("ASGI protocol violation on {uri}: {error}", uri=self._uri, error=error)
        self._apply_all(error_response(500))  # nothing was written: the held start is dropped
        raise ASGIProtocolError(error)

    async def _send_file(self, f: BinaryIO) -> None:
        """``http.response.pathsend``: stream the file with a Twisted producer, reading 16 KiB at a time."""
        sender = FileSender()
        try:
            self._unregister_producer()
            request = self._request
            request.write(b"")  # headers now, even for an empty file
            if os.fstat(f.fileno()).st_size:
                await as_future(sender.beginFileTransfer(f, request))
        except BaseException as e:
            # Cancelled or failed mid-transfer: stop the producer before its
            # file is closed under it (FileSender's Deferred has no canceller).
            if getattr(sender, "file", None) is not None:
                sender.deferred = sender.file = None  # its Deferred was already cancelled
                if not self._disconnected:
                    request.unregisterProducer()
            if isinstance(e, Exception) and self.cycle.client_gone:
                raise ClientDisconnected("the client closed the connection") from e
            raise
        finally:
            f.close()
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
        _log.info("Answering {uri} with {status}: {reason}", uri=self._uri, status=status, reason=reason)
        if self._body_pipe is not None:
            self._body_pipe.detach()
        actions = self.cycle.reject(status, headers)
        self.cycle.client_disconnected()
        self._wakeup.wake()
        # Never write from inside Twisted's header parser: do it on the next turn.
        self._loop.call_soon(self._apply_all, actions)
        if self.task is None:
            self._resource.request_done(self)
        elif status == 504:
            self.task.cancel()
        else:
            self._schedule_cancel()

    def _response_timed_out(self) -> None:
        self._response_timer = None
        timeout = self._resource.response_timeout
        self._reject(504, f"the app did not start a response within {timeout:g} s")

    def _apply_all(self, actions: list[Action]) -> None:
        for action in actions:
            self._apply(action)

    # -- producer interface (called by Twisted) --------------------------------

    def pauseProducing(self) -> None:
        self._gate.pause()

    def resumeProducing(self) -> None:
        self._gate.resume()

    def stopProducing(self) -> None:
        self._client_gone()

    # -- endings --------------------------------------------------------------

    def _finished_ok(self, _: object) -> None:
        """``notifyFinish`` fired: the response is out; tell a waiting receive()."""
        self._wakeup.wake()

    def _connection_lost(self, reason: Failure) -> None:
        self._client_gone()

    def _client_gone(self) -> None:
        if self._disconnected:
            return
        self._disconnected = True
        if not self._finished:
            self._resource.count_abandoned()
        self.cycle.client_disconnected()
        self._finished = True
        self._producer_registered = False
        if self._body_pipe is not None:
            self._body_pipe.detach()
        self._wakeup.wake()
        self._gate.close()
        self._schedule_cancel()

    def _schedule_cancel(self) -> None:
        """Give the app a grace period to notice the disconnect, then cancel it."""
        task = self.task
        if task is None or task.done() or self._grace_timer is not None:
            return
        self._grace_timer = self._loop.call_later(self._resource.disconnect_grace, task.cancel)

    def _cancel_response_timer(self) -> None:
        if self._response_timer is not None:
            self._response_timer.cancel()
            self._response_timer = None

    def _app_done(self, task: asyncio.Task[None]) -> None:
        self._cancel_response_timer()
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        if task.cancelled():
            actions = self.cycle.app_failed("the app task was cancelled")
        elif (exc := task.exception()) is not None:
            if not (isinstance(exc, ClientDisconnected) and self.cycle.client_gone):
                _log.failure(
                    "Exception in ASGI application for {uri}",
                    failure=Failure(exc, type(exc), exc.__traceback__),
                    uri=self._uri,
                )
            actions = self.cycle.app_failed(f"the app raised {type(exc).__name__}")
        else:
            actions = self.cycle.app_returned()
            if actions:
                _log.error("ASGI app returned without completing the response to {uri}", uri=self._uri)
        self._apply_all(actions)
        self._unregister_producer()
        self._resource.request_done(self)

    @property
    def _uri(self) -> str:
        return bytes(self.scope.get("raw_path") or b"").decode("latin-1")


def _buffered_length(content: Any) -> int:
    """Size of a body Twisted already buffered (a plain ``Site``); leaves it rewound."""
    if content is None or isinstance(content, BodyPipe):
        return 0
    size: int = content.seek(0, 2)
    content.seek(0, 0)
    return size


def _declared_length(request: Request) -> int:
    values = request.requestHeaders.getRawHeaders(b"content-length")
    if not values:
        return 0
    try:
        return int(values[0])
    except ValueError:
        return 0


__all__ = ["BODY_HIGH_WATER", "HTTPResponder"]
