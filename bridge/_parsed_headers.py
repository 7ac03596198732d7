"""``ParsedHeaders``: a request's ``Headers`` that keep the parser's list for the ASGI scope.

The scope wants the headers as a list of ``(lowercased name, value)`` pairs in
the order they arrived; Twisted's ``Headers`` keeps them in a dict under
canonically capitalised names, so building the scope from it means walking the
dict and lowercasing every name again.  The llhttp channel has that list
already (``bridge._h1_head``), so it hands it over beside the ``Headers`` every
native resource reads, and ``bridge._request_facts`` takes it as is.

Anything that changes the headers on the way (a wrapping resource, a proxy
fix-up, the bridge removing ``Expect``) goes through ``Headers``' own methods,
which drop the list: from then on the scope is built from the ``Headers``, as
for Twisted's parser, so the app sees the same headers whichever parser ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import AnyStr

from twisted.web.http_headers import Headers, _nameEncoder


class ParsedHeaders(Headers):
    """``Headers`` plus ``scope_headers``, the parser's list, while nothing has changed them."""

    __slots__ = ("scope_headers",)

    def __init__(self, rawHeaders: Mapping[AnyStr, Sequence[AnyStr]] | None = None) -> None:
        #: ``(lowercased name, value)`` pairs in arrival order; None once the headers changed.
        self.scope_headers: list[tuple[bytes, bytes]] | None = None
        super().__init__(rawHeaders)

    @classmethod
    def from_parser(cls, pairs: list[tuple[bytes, bytes]]) -> ParsedHeaders:
        """Headers holding ``pairs``: names lowercased, values as a strict parser passed them.

        Fills the dict behind ``Headers`` directly, with Twisted's own name
        canonicaliser, at half the cost of ``addRawHeader`` a header: that one
        also searches every value for CR and LF, which a strict HTTP/1.1 parser
        never lets through.  (Twisted is pinned to a minor series in
        pyproject.toml; tests/bridge/test_parsed_headers.py holds it to what
        ``addRawHeader`` would build.)
        """
        headers = cls.__new__(cls)  # no __init__: it would only set what is set here
        held: dict[bytes, list[bytes]] = {}
        headers._rawHeaders = held
        headers.scope_headers = pairs
        canonical = _nameEncoder.encode
        for name, value in pairs:
            key = canonical(name)
            values = held.get(key)
            if values is None:
                held[key] = [value]
            else:
                values.append(value)
        return headers

    def setRawHeaders(self, name: str | bytes, values: Sequence[str | bytes]) -> None:
        self.scope_headers = None
        super().setRawHeaders(name, values)

    def addRawHeader(self, name: str | bytes, value: str | bytes) -> None:
        self.scope_headers = None
        super().addRawHeader(name, value)

    def removeHeader(self, name: AnyStr) -> None:
        self.scope_headers = None
        super().removeHeader(name)


__all__ = ["ParsedHeaders"]
