"""``StreamingSite``: a ``Site`` whose requests can reach a resource before their body.

Twisted's ``Request`` buffers the whole body and only then finds and renders
the resource (anchors.md C.5).  ``StreamingRequest`` finds the resource as soon
as the headers are in (``gotLength``).  A resource that provides
``IStreamingBodyResource`` is rendered right then, with ``request.content``
replaced by a ``BodyPipe`` that forwards chunks as they arrive; any other
resource is rendered exactly as before, once the body is complete, without
traversing the tree a second time.

This relies on two private attributes of Twisted's HTTP/1.1 channel
(``_command``, ``_path``, ``_version``: the request line, set before
``gotLength``); ``tests/bridge/test_twisted_hooks.py`` pins them, and the
request falls back to Twisted's own behaviour if they are missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.http import datetimeToString
from twisted.web.resource import IResource
from zope.interface import Interface

from bridge._body import BodyPipe


class IStreamingBodyResource(Interface):
    """A leaf resource that consumes ``request.content`` as a ``BodyPipe``.

    It is rendered when the request headers are complete; it must not write
    to the request synchronously from ``render`` (the HTTP parser is still
    on the stack), and it must accept chunks arriving after ``render``.
    """


def _request_line(channel: Any) -> tuple[bytes, bytes, bytes] | None:
    """Method, target and version of the request being parsed, if available."""
    if hasattr(channel, "_command") and hasattr(channel, "_path"):  # HTTP/1.x
        return channel._command, channel._path, channel._version
    if getattr(channel, "command", None) is not None and getattr(channel, "path", None):  # HTTP/2
        return channel.command, channel.path, b"HTTP/2"
    return None


class StreamingRequest(server.Request):
    """A ``server.Request`` that routes on headers and streams bodies."""

    _routed: IResource | None = None
    _bodyPipe: BodyPipe | None = None

    def gotLength(self, length: int | None) -> None:
        super().gotLength(length)
        line = _request_line(self.channel)
        if line is None:
            return
        command, uri, version = line
        path, _, query = uri.partition(b"?")
        if path == b"*":
            return
        self.method, self.uri, self.clientproto, self.path = command, uri, version, path
        self.args = parse_qs(query, keep_blank_values=True) if query else {}  # type: ignore[assignment]
        self.site = self.channel.site  # type: ignore[attr-defined]
        self.prepath = []
        self.postpath = [unquote_to_bytes(s) for s in path[1:].split(b"/")]
        try:
            self._routed = self.site.getResourceFor(self)
        except Exception:
            # Let the normal path (after the body) report the failure.
            self._routed = None
            return
        if IStreamingBodyResource.providedBy(self._routed):
            if self.content is not None:
                self.content.close()
            self.content = self._bodyPipe = BodyPipe()  # type: ignore[assignment]
            self._renderRouted()

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._bodyPipe is not None:
            # Already rendering: this only means the body is complete.
            self._bodyPipe.finish()
            return
        super().requestReceived(command, path, version)

    def process(self) -> None:
        if self._routed is None:
            super().process()
        else:
            self._renderRouted()

    def _renderRouted(self) -> None:
        """``server.Request.process`` minus the traversal already done."""
        self.site = self.channel.site  # type: ignore[attr-defined]
        self.setHeader(b"Server", server.version)
        self.setHeader(b"Date", datetimeToString())
        try:
            self.render(self._routed)
        except BaseException:
            self.processingFailed(Failure())


class StreamingSite(server.Site):
    """A ``Site`` that streams request bodies to ``IStreamingBodyResource`` leaves.

    Form bodies are not parsed into ``request.args`` for streamed requests
    (that would mean buffering them); other resources see no difference.
    """

    requestFactory = StreamingRequest


__all__ = ["IStreamingBodyResource", "StreamingRequest", "StreamingSite"]
