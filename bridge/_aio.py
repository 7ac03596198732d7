"""The one place where Twisted meets asyncio.

Every other module in the bridge asks this one for the loop, for tasks and for
Deferred <-> Future conversions.  ASGI apps must run as real asyncio Tasks on
the reactor's own loop -- never through ``Deferred.fromCoroutine``, whose
trampoline cannot await asyncio futures (twisted/twisted#11841) -- so that
anyio and asyncio primitives work inside them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")

_FIX = (
    "Call bridge.install_reactor() before anything imports twisted.internet.reactor "
    "(for twistd, pass --reactor=asyncio)."
)


class ReactorMismatch(RuntimeError):
    """The installed reactor is not Twisted's asyncio reactor."""


def install_reactor(loop: asyncio.AbstractEventLoop | str | None = None) -> None:
    """Install Twisted's asyncio reactor, on ``loop`` or on a fresh loop.

    ``loop`` is a loop, or the kind of fresh loop to make: ``"uvloop"``,
    ``"asyncio"`` or ``"auto"`` (uvloop when installed, see ``bridge._choices``).
    ``None`` means the running loop if there is one, else a fresh asyncio loop.

    The reactor is ``bridge._reactor.BridgeReactor``: Twisted's
    ``AsyncioSelectorReactor`` whose socket writes go out before ``write()``
    returns, as asyncio's transports do (see that module).

    Idempotent when the asyncio reactor is already installed (on the kind of
    loop asked for, if a kind is named).  Raises ``ReactorMismatch`` when
    another reactor, or the reactor on another kind of loop, got there first,
    because nothing can be done about that after the fact.
    """
    from bridge._choices import loop_name, new_event_loop

    if "twisted.internet.reactor" in sys.modules:
        running = loop_name(reactor_loop())
        if loop in ("uvloop", "asyncio") and running != loop:
            raise ReactorMismatch(f"The reactor is already installed on {running}, not {loop}. {_FIX}")
        return
    from bridge._reactor import install

    if isinstance(loop, str):
        loop = new_event_loop(loop)
    elif loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.new_event_loop()
    # AsyncioSelectorReactor.install(loop) does not make the loop current; code
    # that calls asyncio.get_event_loop() before the loop runs needs it.
    asyncio.set_event_loop(loop)
    install(loop)


def reactor_loop() -> asyncio.AbstractEventLoop:
    """Return the asyncio loop the installed reactor runs on.

    Raises ``ReactorMismatch`` with instructions if the reactor is not the
    asyncio reactor, so misconfiguration fails at construction time instead
    of at the first request.
    """
    if "twisted.internet.reactor" not in sys.modules:
        # Importing it here would install the platform default reactor.
        raise ReactorMismatch(f"No Twisted reactor is installed yet. {_FIX}")
    from twisted.internet import reactor

    loop = getattr(reactor, "_asyncioEventloop", None)
    if not isinstance(loop, asyncio.AbstractEventLoop):
        raise ReactorMismatch(
            f"The installed reactor is {type(reactor).__module__}.{type(reactor).__name__}, "
            f"but the bridge needs Twisted's AsyncioSelectorReactor. {_FIX}"
        )
    return loop


def spawn(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run ``coro`` as a Task on the reactor's loop.  Called on the reactor."""
    return reactor_loop().create_task(coro)


def start_task(loop: asyncio.AbstractEventLoop, call: Awaitable[T]) -> asyncio.Future[T]:
    """Run an app call (any awaitable) as a Task on ``loop``, the reactor's.

    ``create_task`` directly for the usual coroutine: ``ensure_future``'s
    checks would be paid on every request.
    """
    if asyncio.iscoroutine(call):
        return loop.create_task(call)
    return asyncio.ensure_future(call, loop=loop)


def as_deferred(future: asyncio.Future[T]) -> Deferred[T]:
    """Wrap a Future or Task for Twisted; cancelling the Deferred cancels it."""
    return Deferred.fromFuture(future)


def as_future(deferred: Deferred[T]) -> asyncio.Future[T]:
    """Let asyncio code await a Deferred on the reactor's loop."""
    return deferred.asFuture(reactor_loop())


__all__ = ["ReactorMismatch", "as_deferred", "as_future", "install_reactor", "reactor_loop", "spawn", "start_task"]
