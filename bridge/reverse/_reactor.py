"""Twisted's asyncio reactor as a guest on an ASGI server's running loop.

Under the reverse adapter the ASGI server owns the loop, so the reactor is started with
``startRunning()`` instead of ``run()`` (``run()`` calls ``run_forever()`` on a loop that is
already running: twisted/twisted#12006).  It must also never stop that loop: the reactor's own
"during shutdown" trigger, ``crash()``, calls ``loop.stop()``, and the server then dies with
"Event loop stopped before Future completed".  Starting the reactor here swaps that trigger for
one that only resets the reactor's state, so a shutdown -- ours, or a ``reactor.stop()`` left in
legacy code -- runs every other trigger (thread pool, sockets, services) and leaves the loop alone.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.internet.base import ReactorBase
from twisted.logger import STDLibLogObserver, globalLogBeginner

from bridge._aio import ReactorMismatch, install_reactor, reactor_loop
from bridge.reverse._adopt import adopt, can_adopt, reactor_holders


def start_reactor() -> bool:
    """Start the global reactor on the running loop; return whether this call started it.

    Installs Twisted's asyncio reactor for the running loop if no reactor is installed yet, or
    moves one that was installed at import time (on a loop the server never ran) onto it, and
    then also sends Twisted's log events to the standard library's ``logging`` (nobody else in
    a plain ASGI server process would, and tracebacks of failing resources would be lost).
    Raises ``ReactorMismatch`` when a reactor is installed that cannot run on this loop.
    """
    loop = asyncio.get_running_loop()
    try:
        install_reactor(loop)
    except ReactorMismatch as error:
        raise ReactorMismatch(f"{error}{_imported_by(_reactor())}") from None
    reactor = _reactor()
    if reactor_loop() is not loop:
        asyncio_reactor = cast(AsyncioSelectorReactor, reactor)
        if not can_adopt(asyncio_reactor, loop):
            raise ReactorMismatch(
                "Twisted's asyncio reactor already runs on another event loop than the ASGI "
                "server's; it cannot serve requests on this one. Run TwistedResourceApp in the "
                "process and on the loop where that reactor runs, or let the ASGI server's loop "
                "be the only one."
            )
        adopt(asyncio_reactor, loop)
    if not _logging_begun():
        globalLogBeginner.beginLoggingTo([STDLibLogObserver()], redirectStandardIO=False)
    if reactor.running:
        return False
    _keep_loop_running(reactor)
    reactor.startRunning(installSignalHandlers=False)
    return True


def _logging_begun() -> bool:
    # Until someone begins logging, Twisted buffers events in a temporary observer.
    return getattr(globalLogBeginner, "_temporaryObserver", None) is None


def _imported_by(reactor: object) -> str:
    holders = reactor_holders(reactor)
    if not holders:
        return ""
    return (
        " It was installed by the first import of twisted.internet.reactor, at module level in: "
        + ", ".join(holders)
        + ". Call bridge.install_reactor() in the ASGI app module before those imports."
    )


async def shutdown_reactor() -> None:
    """Fire the reactor's shutdown triggers and wait until they have all run.

    ``fireSystemEvent`` rather than ``reactor.stop()``: the host server is the one stopping,
    and "before" triggers that return Deferreds (stopping services) are waited for.
    """
    reactor = _reactor()
    if not reactor.running:
        return  # already shut down (e.g. legacy code called reactor.stop()): nothing will fire
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finished() -> None:
        if not done.done():
            done.set_result(None)

    # Twisted drops an event's triggers once it has fired, so this one cannot
    # outlive the shutdown; the guard covers a second fire in the same round.
    reactor.addSystemEventTrigger("after", "shutdown", finished)
    reactor.fireSystemEvent("shutdown")
    await done


def _keep_loop_running(reactor: ReactorBase) -> None:
    # The trigger handle is (phase, callable, args, kwargs), as addSystemEventTrigger built it
    # for ReactorBase.__init__; ReactorBase.crash is crash() minus loop.stop().
    crash_trigger: Any = ("shutdown", ("during", reactor.crash, (), {}))
    reactor.removeSystemEventTrigger(crash_trigger)
    reactor.addSystemEventTrigger("during", "shutdown", ReactorBase.crash, reactor)


def _reactor() -> ReactorBase:
    from twisted.internet import reactor

    return cast(ReactorBase, reactor)
