"""One HTTP/1.1 request head, parsed by llhttp (through httptools) and held to ``GuardedHTTPChannel``'s rules.

Sans-IO: ``HeadParser.parse`` takes the bytes of a complete head (request line
to the empty line, CRLFs included) and returns a ``Head`` or raises
``Refusal`` with the status the Twisted channel would answer.  llhttp in its
strict mode already refuses most of what ``GuardedHTTPChannel`` lists (bare
LF or CR, obs-fold, NUL, bad tokens, duplicate or malformed Content-Length,
Content-Length beside Transfer-Encoding); the rest is checked here: the
request line by Twisted's own grammar (a token method, a printable ASCII
target, exactly two spaces), 505 for ``HTTP/x.y`` other than 1.0 and 1.1,
one Host, a Transfer-Encoding of exactly ``chunked`` and only on HTTP/1.1,
the header count and bytes.  Stricter than Twisted on purpose: DEL in a
header value (not a field-vchar, RFC 9110 5.5) and a Content-Length beyond
64 bits get 400.  llhttp never sees a body: the channel frames
bodies with Twisted's decoders, so both parsers read chunked bodies alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httptools

_HTTP_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_TARGET = re.compile(rb"[\x00-\x20\x7f]")
#: Methods llhttp parses as ordinary requests; any other token is given to llhttp as GET
#: (llhttp refuses methods it does not know, and treats CONNECT as a tunnel).
_PLAIN_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"))


class Refusal(Exception):
    """The head is refused: answer ``status`` and close; ``reason`` is for the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


@dataclass
class Head:
    """A parsed request head: what ``HTTPChannel`` would have collected line by line."""

    method: bytes
    target: bytes
    version: bytes
    #: ``(lowercased name, value)`` in arrival order: the ASGI scope's list (``bridge._parsed_headers``).
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: The body's length: 0 for none, None for chunked.
    length: int | None = 0
    hosts: int = 0


def head_size(head: bytes) -> int:
    """The bytes Twisted counts against its header limit: every line, without its CRLF."""
    return len(head) - 2 * head.count(b"\r\n")


class HeadParser:
    """Parses complete request heads, one at a time; keeps one llhttp parser while it can."""

    def __init__(self, max_headers: int) -> None:
        self.max_headers = max_headers
        self._parser: httptools.HttpRequestParser | None = None
        self._head: Head | None = None
        self._problem: Refusal | None = None
        self._complete = False

    def parse(self, data: bytes) -> Head:
        """Parse ``data``, one complete head ending in CRLF CRLF."""
        line, _, rest = data.partition(b"\r\n")
        head = self._head = Head(*_request_line(line))
        self._problem = None
        self._complete = False
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        if head.method not in _PLAIN_METHODS:
            data = b"GET " + head.target + b" " + head.version + b"\r\n" + rest
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._parser = None  # llhttp would read what follows as another protocol
        except httptools.HttpParserError as e:
            self._parser = None
            raise self._problem or Refusal(400, f"malformed request head ({e})") from None
        if self._problem is not None:
            self._parser = None
            raise self._problem
        # The body is framed by the channel: llhttp must start afresh after one, or after a
        # request after which it would refuse more (HTTP/1.0, Connection: close).
        if head.length != 0 or not self._complete or not parser.should_keep_alive():
            self._parser = None
        return head

    def check_size(self, data: bytes, limit: int) -> None:
        """Refuse a complete head over ``limit`` bytes (``head_size``) as Twisted would, line by line:
        a line before the one that crosses the limit may be refused for itself first."""
        if len(data) <= limit or head_size(data) <= limit:
            return
        total = start = 0
        while (end := data.find(b"\r\n", start)) >= 0:
            total += end - start
            if total > limit:
                break
            start = end + 2
        self.check_partial(data[:start], limit)
        raise Refusal(431, f"request headers over {limit} bytes")

    def check_partial(self, data: bytes, limit: int) -> None:
        """Refuse an incomplete head now if its complete lines are already wrong, as Twisted (line by line) does."""
        end = data.rfind(b"\r\n") + 2
        if end < 2:
            end = 0
        complete, rest = data[:end], data[end:]
        self.check_size(complete, limit)
        # Twisted holds the last header line until the next one (it could be folded): only
        # obs-fold is refused on arrival, the rest of its checks come later.
        last = complete.rfind(b"\r\n", 0, max(end - 2, 0)) + 2
        held = complete[last:] if last >= 2 else b""
        checked = complete[: len(complete) - len(held)]
        if checked:
            HeadParser(self.max_headers).parse(checked + b"\r\n")
        if held[:1] in (b" ", b"\t"):
            raise Refusal(400, "obsolete line folding")
        if len(rest) >= limit + 2:  # Twisted's LineReceiver: MAX_LENGTH plus the delimiter it waits for
            raise Refusal(431, f"a request head line over {limit} bytes")
        if b"\n" in rest:
            raise Refusal(400, "bare LF in the request head")

    # -- llhttp callbacks ------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._head
        assert head is not None
        headers = head.headers
        if value[-1:] in (b" ", b"\t"):
            value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace; Twisted does not
        lower = name.lower()
        headers.append((lower, value))
        if len(headers) > self.max_headers:
            self._refuse(400, f"more than {self.max_headers} headers")
        if lower == b"host":
            head.hosts += 1
            if head.hosts > 1:
                self._refuse(400, "more than one Host header")
        elif lower == b"content-length":
            head.length = int(value)  # llhttp has checked it: digits, once, no Transfer-Encoding
        elif lower == b"transfer-encoding":
            if value.strip(b" \t").lower() != b"chunked" or head.version != b"HTTP/1.1":
                self._refuse(400, "a Transfer-Encoding other than chunked on HTTP/1.1")
            head.length = None

    def on_message_complete(self) -> None:
        self._complete = True

    def _refuse(self, status: int, reason: str) -> None:
        if self._problem is None:
            self._problem = Refusal(status, reason)
        raise self._problem


def _request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """Method, target and version, by Twisted's grammar; the version check first, for 505."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise Refusal(400, "malformed request line")
    method, target, version = parts
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        if _HTTP_VERSION.fullmatch(version):
            raise Refusal(505, f"unsupported version {version.decode()}")
        raise Refusal(400, "malformed request line")
    if method not in _PLAIN_METHODS and not _TOKEN.fullmatch(method):
        raise Refusal(400, "malformed request line")
    if not target or not target.isascii() or _NOT_IN_TARGET.search(target):
        raise Refusal(400, "a byte outside printable ASCII in the request target")
    return method, target, version


__all__ = ["Head", "HeadParser", "Refusal", "head_size"]
