"""The llhttp channel's header list, straight into the ASGI scope (bridge._parsed_headers).

``ParsedHeaders`` must read exactly like the ``Headers`` that ``addRawHeader``
builds, and must stop offering its list once anything changes the headers, so
an app sees the same headers whichever parser ran.  The scope tests run the
real ``ASGIResource`` on a ``StreamingSite`` channel of each parser, in process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.http_headers import Headers
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from bridge import http_channel_class
from bridge._parsed_headers import ParsedHeaders
from bridge.resource import ASGIResource
from bridge.site import StreamingSite
from tests.bridge.loop_turns import settle

PAIRS = [
    (b"host", b"example.com"),
    (b"x-a", b"1"),
    (b"content-md5", b"Q2hlY2s="),
    (b"www-authenticate", b"Basic"),
    (b"x-a", b"2"),
    (b"dnt", b"1"),
    (b"accept", b"*/*"),
    (b"x-a", b""),
]

#: The same request on the wire, with names in the cases clients send.
REQUEST = (
    b"GET /app/x HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\nContent-MD5: Q2hlY2s=\r\n"
    b"WWW-Authenticate: Basic\r\nx-a: 2\r\nDNT: 1\r\nAccept: */*\r\nX-a:\r\n\r\n"
)

PARSERS = ["twisted", "httptools"]


def test_it_reads_exactly_like_headers_built_one_by_one() -> None:
    built = Headers()
    for name, value in PAIRS:
        built.addRawHeader(name, value)
    parsed = ParsedHeaders.from_parser(list(PAIRS))
    assert list(parsed.getAllRawHeaders()) == list(built.getAllRawHeaders())
    assert parsed.getRawHeaders(b"X-A") == [b"1", b"2", b""]
    assert parsed.getRawHeaders("content-md5") == ["Q2hlY2s="]
    assert parsed.hasHeader(b"Dnt") and not parsed.hasHeader(b"cookie")
    assert parsed == built
    assert parsed.scope_headers == PAIRS


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.addRawHeader(b"x-added", b"1"),
        lambda h: h.setRawHeaders(b"accept", [b"text/html"]),
        lambda h: h.removeHeader(b"dnt"),
        lambda h: h.removeHeader(b"absent"),
    ],
    ids=["addRawHeader", "setRawHeaders", "removeHeader", "removeHeader of an absent name"],
)
def test_any_change_drops_the_list(change: Callable[[Headers], None]) -> None:
    parsed = ParsedHeaders.from_parser(list(PAIRS))
    change(parsed)
    assert parsed.scope_headers is None


def test_a_copy_has_the_headers_but_not_the_list() -> None:
    parsed = ParsedHeaders.from_parser(list(PAIRS))
    copied = parsed.copy()
    assert copied == parsed
    assert getattr(copied, "scope_headers", None) is None


REWRITES: dict[str, Callable[[Headers], None]] = {
    "remove": lambda h: h.removeHeader(b"dnt"),
    "add": lambda h: h.addRawHeader(b"X-Added", b"yes"),
    "set": lambda h: h.setRawHeaders(b"x-a", [b"only"]),
}
REWRITTEN = {
    "remove": [pair for pair in PAIRS if pair[0] != b"dnt"],
    "add": [*PAIRS, (b"x-added", b"yes")],
    "set": [pair for pair in PAIRS if pair[0] != b"x-a"] + [(b"x-a", b"only")],
}


class Rewriting(Resource):
    """A native resource in front of the app that changes the headers, as proxy fix-ups do."""

    def __init__(self, app: IResource, rewrite: Callable[[Headers], None]) -> None:
        super().__init__()
        self._app = app
        self._rewrite = rewrite

    def getChild(self, path: bytes, request: Request) -> IResource:
        self._rewrite(request.requestHeaders)
        return self._app


def scope_headers_seen(parser: str, rewrite: str | None = None) -> list[tuple[bytes, bytes]]:
    """The ``headers`` of the scope the app at /app gets for ``REQUEST`` on ``parser``'s channel."""
    seen: list[list[tuple[bytes, bytes]]] = []

    async def main() -> None:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.append(scope["headers"])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body"})

        resource = ASGIResource(app, clock=Clock(), loop=asyncio.get_running_loop())
        root = Resource()
        root.putChild(b"app", Rewriting(resource, REWRITES[rewrite]) if rewrite else resource)
        site = StreamingSite(root, reactor=MemoryReactorClock(), channel_class=http_channel_class(parser))
        channel: Any = site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(REQUEST)
        await settle(lambda: transport.value().startswith(b"HTTP/1.1 204 "))

    asyncio.run(main())
    [headers] = seen
    return headers


def test_on_llhttp_the_app_gets_the_headers_in_the_order_they_arrived() -> None:
    assert scope_headers_seen("httptools") == PAIRS


@pytest.mark.parametrize("parser", PARSERS)
def test_both_parsers_give_the_app_the_same_headers(parser: str) -> None:
    """Twisted's ``Headers`` group values by name; each name's values keep their order on both."""
    headers = scope_headers_seen(parser)
    assert sorted(headers, key=itemgetter(0)) == sorted(PAIRS, key=itemgetter(0))


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
@pytest.mark.parametrize("parser", PARSERS)
def test_headers_changed_on_the_way_reach_the_app_changed(parser: str, rewrite: str) -> None:
    headers = scope_headers_seen(parser, rewrite)
    assert sorted(headers, key=itemgetter(0)) == sorted(REWRITTEN[rewrite], key=itemgetter(0))
