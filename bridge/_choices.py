"""The fast lane's two switches, by Uvicorn's names: ``http`` (the HTTP/1.1 parser) and ``loop``.

``auto`` takes what is installed, as Uvicorn's does: ``http="auto"`` takes
httptools, ``loop="auto"`` uvloop (both come with ``pip install
hybrid-twisted-asgi[fast]``), else Twisted's parser and asyncio's own loop.
``make test`` runs the whole suite on each lane.  Asking for one that is not
installed is an error that says how to get it.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Literal

from bridge._channel import GuardedHTTPChannel

HttpChoice = Literal["auto", "httptools", "twisted"]
LoopChoice = Literal["auto", "uvloop", "asyncio"]
HTTP_CHOICES: tuple[HttpChoice, ...] = ("auto", "httptools", "twisted")
LOOP_CHOICES: tuple[LoopChoice, ...] = ("auto", "uvloop", "asyncio")


class NotInstalled(RuntimeError):
    """The chosen parser or loop is not installed."""


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _require(module: str) -> None:
    if not _installed(module):
        raise NotInstalled(f"{module} is not installed: pip install 'hybrid-twisted-asgi[fast]'")


def http_channel_class(choice: str = "auto") -> type[GuardedHTTPChannel]:
    """The HTTP/1.1 channel class for ``StreamingSite(channel_class=...)``."""
    if choice not in HTTP_CHOICES:
        raise ValueError(f"http must be one of {', '.join(HTTP_CHOICES)}, not {choice!r}")
    if choice == "twisted" or (choice == "auto" and not _installed("httptools")):
        return GuardedHTTPChannel
    _require("httptools")
    from bridge._fast_channel import HttpToolsChannel

    return HttpToolsChannel


def http_name(channel_class: type[GuardedHTTPChannel]) -> str:
    """``httptools`` or ``twisted``: the parser a channel class uses, for the startup line."""
    name: str = getattr(channel_class, "parser_name", "twisted")
    return name


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """A fresh event loop of the chosen kind."""
    if choice not in LOOP_CHOICES:
        raise ValueError(f"loop must be one of {', '.join(LOOP_CHOICES)}, not {choice!r}")
    if choice == "asyncio" or (choice == "auto" and not _installed("uvloop")):
        return asyncio.new_event_loop()
    _require("uvloop")
    import uvloop

    return uvloop.new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: the kind of a loop, for the startup line and for checks."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


__all__ = [
    "HTTP_CHOICES",
    "LOOP_CHOICES",
    "NotInstalled",
    "http_channel_class",
    "http_name",
    "loop_name",
    "new_event_loop",
]
