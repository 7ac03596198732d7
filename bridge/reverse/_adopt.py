"""Move an installed but never-run asyncio reactor onto the ASGI server's running loop.

Legacy modules do ``from twisted.internet import reactor`` at import time, and the README tells
users to call ``bridge.install_reactor()`` first.  An ASGI server imports the app module before
it creates its loop (``asyncio.run``, ``asyncio.Runner``, uvloop), so the reactor gets built on a
loop that will never run.  As long as that reactor has not started, nothing it did is lost: what
it did with its loop is recorded in the reactor itself -- file descriptors it watches
(``_readers``/``_writers``: listening ports, client sockets, the waker) and one timer handle for
its earliest delayed call (``_timerHandle``; the calls themselves live in the reactor).  Moving
those onto the running loop makes import-time ``listenTCP``, ``connectTCP``, ``callLater`` and
``LoopingCall`` run on the server's loop, as if the reactor had been installed there.

What cannot move: asyncio objects legacy code made on the unused loop itself (a Future from
``Deferred.asFuture(loop)``, a handle from ``loop.call_soon``), and ``callFromThread`` calls made
before the move.  Both need the loop that import time never had.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from bridge._reactor import BridgeReactor


def can_adopt(reactor: AsyncioSelectorReactor, loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``reactor`` may move to ``loop``: it never ran, and its own loop is not running."""
    old = reactor._asyncioEventloop
    started: bool = reactor._startedBefore or reactor.running
    return old is not loop and not started and not old.is_running()


def adopt(reactor: AsyncioSelectorReactor, loop: asyncio.AbstractEventLoop) -> None:
    """Rebind ``reactor`` to ``loop``, carrying its watched descriptors and its timer over.

    The unused loop is closed afterwards: nothing will run it, and it holds a selector.
    """
    old = reactor._asyncioEventloop
    readers: list[Any] = list(reactor._readers)
    writers: list[Any] = list(reactor._writers)
    for reader in readers:
        reactor.removeReader(reader)
    for writer in writers:
        reactor.removeWriter(writer)
    if reactor._timerHandle is not None:
        reactor._timerHandle.cancel()
    reactor._timerHandle = reactor._scheduledAt = None
    reactor._asyncioEventloop = loop
    for reader in readers:
        reactor.addReader(reader)
    for writer in writers:
        reactor.addWriter(writer)
    reactor._reschedule()
    if isinstance(reactor, BridgeReactor) and reactor._flushScheduled:
        # Its call_soon went to the old loop: ask the new one.
        loop.call_soon(reactor._flushPendingWriters)
    if not old.is_closed():
        old.close()


def reactor_holders(reactor: object) -> list[str]:
    """Modules (outside Twisted) that hold ``reactor`` as a global: those that imported it at
    module level, which is how it got installed before the bridge could install its own."""
    holders = []
    for name, module in list(sys.modules.items()):
        if name.startswith(("twisted.", "bridge.")) or module is None:
            continue
        if getattr(module, "reactor", None) is reactor:
            where = getattr(module, "__file__", None)
            holders.append(f"{name} ({where})" if where else name)
    return sorted(holders)
