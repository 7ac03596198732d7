"""``StreamingSite``: a ``Site`` whose requests can reach a resource before their body.

Twisted's ``Request`` buffers the whole body and only then finds and renders
the resource (anchors.md C.5).  ``StreamingRequest`` finds the resource as soon
as the headers are in (``gotLength``).  A resource that provides
``IStreamingBodyResource`` is rendered right then, with ``request.content``
replaced by a ``BodyPipe`` that forwards chunks as they arrive; any other
resource is rendered exactly as before, once the body is complete, without
traversing the tree a second time.

This relies on three private attributes of Twisted's HTTP/1.1 channel
(``_command``, ``_path``, ``_version``: the request line, set before
``gotLength``); ``tests/bridge/test_twisted_hooks.py`` pins them, and the
request falls back to Twisted's own behaviour if they are missing.

HTTP/2 differs: Twisted's private ``H2Stream._convertHeaders`` adds the
headers one by one and calls ``gotLength`` the moment it meets
``content-length``, before the headers that follow it (h2 always puts
``cookie`` last). Its last step, with every header in and before any body, is
``parseCookies``, so HTTP/2 requests are routed there instead (also pinned).
"""

from __future__ import annotations

from time import time
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web._http2 import H2Stream
from twisted.web.http import datetimeToString, parse_qs
from twisted.web.resource import IResource
from zope.interface import Interface

from bridge._body import BodyPipe
from bridge._channel import CountedHTTPProtocol, GuardedHTTPChannel, OverloadedProtocol
from bridge._flow import IdleWaiters

_log = Logger(namespace="bridge.site")


class IStreamingBodyResource(Interface):
    """A leaf resource that consumes ``request.content`` as a ``BodyPipe``.

    It is rendered when the request headers are complete; it must not write
    to the request synchronously from ``render`` (the HTTP parser is still
    on the stack), and it must accept chunks arriving after ``render``.
    """


def origin_form(target: bytes) -> bytes:
    """``/p?q`` from an absolute-form target (``http://host/p?q``), which RFC 9112
    3.2.2 says servers must accept; Twisted would traverse ``http:`` as a segment."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return target
    slash = min((i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0), default=-1)
    if slash < 0:
        return b"/"
    return rest[slash:] if rest[slash : slash + 1] == b"/" else b"/" + rest[slash:]


def _request_line(channel: Any) -> tuple[bytes, bytes, bytes] | None:
    """Method, target and version of the request being parsed, if available."""
    if hasattr(channel, "_command") and hasattr(channel, "_path"):  # HTTP/1.x
        return channel._command, channel._path, channel._version
    if getattr(channel, "command", None) is not None and getattr(channel, "path", None):  # HTTP/2
        return channel.command, channel.path, b"HTTP/2"
    return None


_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """``datetimeToString()`` for now, formatted once per second rather than once per response."""
    global _date_cache
    now = int(time())
    if _date_cache[0] != now:
        _date_cache = (now, datetimeToString(now))
    return _date_cache[1]


class StreamingRequest(server.Request):
    """A ``server.Request`` that routes on headers and streams bodies."""

    _routed: IResource | None = None
    _bodyPipe: BodyPipe | None = None

    def gotLength(self, length: int | None) -> None:
        # Route first: a streamed request needs no body file (Twisted opens a
        # temporary file for a chunked body), so only others get one.
        if isinstance(self.channel, H2Stream) or not self._route(length):
            super().gotLength(length)

    def parseCookies(self) -> None:
        super().parseCookies()
        if isinstance(self.channel, H2Stream):
            self._route(None)

    def _route(self, length: int | None) -> bool:
        """Find the resource from the request line and headers; render it now if it streams bodies.

        Returns whether it did: then ``request.content`` is a ``BodyPipe``
        (already finished when ``length`` says there is no body).
        """
        line = _request_line(self.channel)
        if line is None:
            return False
        command, uri, version = line
        uri = origin_form(uri)
        path, _, query = uri.partition(b"?")
        if path == b"*":
            return False
        self.method, self.uri, self.clientproto, self.path = command, uri, version, path
        # Twisted's parse_qs, as requestReceived uses: bytes in, bytes out, any octets.
        self.args = parse_qs(query, 1) if query else {}
        self.site = self.channel.site  # type: ignore[attr-defined]
        if isinstance(self.site, StreamingSite):
            self.site.requestStarted(self)
        self.prepath = []
        self.postpath = [unquote_to_bytes(s) for s in path[1:].split(b"/")]
        try:
            self._routed = self.site.getResourceFor(self)
        except Exception:
            # Let the normal path (after the body) report the failure.
            self._routed = None
            return False
        if not IStreamingBodyResource.providedBy(self._routed):
            return False
        if self.content is not None:  # HTTP/2 opened one before the headers were all in
            self.content.close()
        self.content = self._bodyPipe = BodyPipe()  # type: ignore[assignment]
        if length == 0:
            self._bodyPipe.finish()
        self._renderRouted()
        return True

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        path = origin_form(path)
        if self._bodyPipe is not None:
            # Already rendering: this only means the body is complete.
            if not self._bodyPipe.finished:
                self._bodyPipe.finish()
            return
        super().requestReceived(command, path, version)

    def handleContentChunk(self, data: bytes) -> None:
        # Over TLS, body bytes can still arrive after an early, complete response
        # (Twisted's TLS layer keeps delivering after loseConnection): drop them.
        if getattr(self, "content", None) is not None:
            super().handleContentChunk(data)

    def write(self, data: bytes) -> None:
        channel = self.channel
        if self.startedWriting or not data or not isinstance(channel, GuardedHTTPChannel):
            super().write(data)
            return
        # The response's first write: its head and this data leave in one send().
        channel._holdHead = True
        try:
            super().write(data)
        finally:
            channel.flushHeldHead()

    def process(self) -> None:
        if self._routed is None:
            super().process()
        else:
            self._renderRouted()

    def _renderRouted(self) -> None:
        """``server.Request.process`` minus the traversal already done."""
        self.site = self.channel.site  # type: ignore[attr-defined]
        self.setHeader(b"Server", server.version)
        self.setHeader(b"Date", _http_date())
        try:
            self.render(self._routed)
        except BaseException:
            self.processingFailed(Failure())


class StreamingSite(server.Site):
    """A ``Site`` that streams request bodies to ``IStreamingBodyResource`` leaves.

    Form bodies are not parsed into ``request.args`` for streamed requests
    (that would mean buffering them).  Other resources render as before, with
    one difference: the tree is traversed when the headers are in, so a
    ``getChild`` that reads form fields from ``request.args`` sees only the
    query string (rendering still happens after the body, with the form parsed).

    It also carries the limits a public server needs (defaults in brackets):

    :param header_timeout: seconds a client has to send a request's complete
        headers, from connecting or from the previous response; also the
        idle limit of a keep-alive connection [10].  ``None`` disables it.
    :param idle_timeout: Twisted's inactivity timeout, which also bounds a
        stalled request body [60].
    :param max_connections: open connections beyond this get 503 and are
        closed [None: unlimited].
    :param max_header_count: headers per request; more get 400 [100].
    :param max_header_bytes: request line plus headers; more get 431 [16384].
    :param channel_class: the HTTP/1.1 channel: ``GuardedHTTPChannel`` (Twisted's
        parser) or ``bridge.http_channel_class("httptools")`` (llhttp); HTTP/2
        after ALPN is Twisted's either way [GuardedHTTPChannel].
    """

    requestFactory = StreamingRequest

    def __init__(
        self,
        resource: IResource,
        *,
        header_timeout: float | None = 10.0,
        idle_timeout: float = 60.0,
        max_connections: int | None = None,
        max_header_count: int = 100,
        max_header_bytes: int = 16384,
        channel_class: type[GuardedHTTPChannel] = GuardedHTTPChannel,
        **kwargs: Any,
    ) -> None:
        super().__init__(resource, timeout=idle_timeout, **kwargs)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.max_header_count = max_header_count
        self.max_header_bytes = max_header_bytes
        self.channel_class = channel_class
        self.open_connections = 0
        self.in_flight = 0
        self._idle = IdleWaiters()

    def protocol(self) -> CountedHTTPProtocol:
        """Build the per-connection protocol (Twisted calls ``factory.protocol()``)."""
        channel = self.channel_class()
        channel.headerTimeout = self.header_timeout
        channel.maxHeaders = self.max_header_count
        channel.totalHeadersSize = self.max_header_bytes
        channel.MAX_LENGTH = self.max_header_bytes
        return CountedHTTPProtocol(channel)

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:  # type: ignore[override]
        if self.max_connections is not None and self.open_connections >= self.max_connections:
            _log.warn("Refusing {addr}: {n} connections open", addr=str(addr), n=self.open_connections)
            return OverloadedProtocol()
        self.open_connections += 1
        protocol: Protocol | None = super().buildProtocol(addr)
        return protocol

    def connectionClosed(self) -> None:
        self.open_connections -= 1

    def channelAnswered(self, status: int) -> None:
        """Called when a connection's channel answers a request itself (400, 408, 431, 505).

        No request reaches the site's log for those; a subclass that counts
        refusals (metrics) overrides this.
        """

    # -- in-flight requests, for draining -------------------------------------

    def requestStarted(self, request: server.Request) -> None:
        self.in_flight += 1
        request.notifyFinish().addBoth(self._requestEnded)

    def _requestEnded(self, _: object) -> None:
        self.in_flight -= 1
        self._idle.notify(bool(self.in_flight))

    def wait_idle(self) -> Deferred[None]:
        """A Deferred that fires when no request is in flight (for draining)."""
        return self._idle.wait(bool(self.in_flight))


__all__ = ["IStreamingBodyResource", "StreamingRequest", "StreamingSite"]
