"""The ASGI lifespan protocol (lifespan.rst 2.0), as one small asyncio class.

It knows nothing of Twisted: ``LifespanService`` in ``bridge.service`` ties
``startup()`` and ``shutdown()`` to a Twisted service's start and stop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.logger import Logger

from bridge.errors import LifespanFailure
from bridge.types import ASGIApp, Message

_log = Logger(namespace="bridge.lifespan")


class Lifespan:
    """Drive one app's lifespan scope: startup, then later shutdown.

    An app that raises before completing startup does not support lifespan
    (lifespan.rst: "the server must continue but not send any lifespan
    events"); ``supported`` turns False and ``shutdown()`` does nothing.
    Nor is there a shutdown after a failed startup: the app's task is
    cancelled instead, as Uvicorn and Hypercorn end it, so its shutdown
    handlers never run against state its startup did not finish making.
    """

    def __init__(
        self,
        app: ASGIApp,
        state: dict[str, Any],
        *,
        startup_timeout: float = 30.0,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self._app = app
        self.state = state
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._outcome: asyncio.Future[Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self.supported = True
        self._started = False
        self._expecting = "lifespan.startup"

    async def startup(self) -> None:
        """Run startup; raise ``LifespanFailure`` if the app says it failed or times out."""
        loop = asyncio.get_running_loop()
        self._outcome = loop.create_future()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self._task = loop.create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        reply = await self._await_outcome(self._startup_timeout, "startup")
        if reply is None:
            return
        if reply["type"] == "lifespan.startup.failed":
            self._task.cancel()
            raise LifespanFailure(f"lifespan startup failed: {reply.get('message', '') or '(no message)'}")
        self._started = True

    async def shutdown(self) -> None:
        """Run shutdown; raise ``LifespanFailure`` if the app says it failed or times out."""
        if not self._started or self._task is None or self._task.done():
            if self._task is not None and not self._task.done():
                self._task.cancel()  # startup never completed: do not leave it running
            return
        self._outcome = asyncio.get_running_loop().create_future()
        self._expecting = "lifespan.shutdown"
        await self._inbox.put({"type": "lifespan.shutdown"})
        reply = await self._await_outcome(self._shutdown_timeout, "shutdown")
        if reply is not None and reply["type"] == "lifespan.shutdown.failed":
            raise LifespanFailure(f"lifespan shutdown failed: {reply.get('message', '') or '(no message)'}")

    async def _await_outcome(self, limit: float, phase: str) -> Message | None:
        assert self._outcome is not None
        try:
            return await asyncio.wait_for(asyncio.shield(self._outcome), limit)
        except TimeoutError:
            if self._task is not None:
                self._task.cancel()
            raise LifespanFailure(
                f"lifespan {phase} did not complete within {limit:g} s; check the app's "
                f"{phase} handlers (or raise the {phase} timeout)"
            ) from None

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self._app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if self._settled():
                # After a *.failed reply the app's raise is the same failure,
                # already logged; anything else is a crash worth a traceback.
                outcome = self._outcome
                reply = outcome.result() if outcome is not None else None
                if not (reply and str(reply.get("type", "")).endswith(".failed")):
                    _log.failure("ASGI lifespan task ended with an exception")
                return
            if self._expecting == "lifespan.startup":
                self.supported = False
                _log.info(
                    "ASGI app does not support lifespan ({error}); continuing without it",
                    error=repr(e),
                )
                self._settle(None)
            else:
                _log.failure("Exception in ASGI lifespan during {phase}", phase=self._expecting)
                self._settle({"type": f"{self._expecting}.failed", "message": repr(e)})
            return
        if not self._settled():
            # Returned without answering: treat as no lifespan support.
            self.supported = self._expecting != "lifespan.startup"
            self._settle(None)

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        allowed = (f"{self._expecting}.complete", f"{self._expecting}.failed")
        if kind not in allowed or self._settled():
            raise RuntimeError(f"unexpected lifespan message {kind!r} while waiting for {' or '.join(allowed)}")
        if kind.endswith(".failed"):
            _log.error("ASGI lifespan {kind}: {message}", kind=kind, message=message.get("message", ""))
        self._settle(dict(message))

    def _settled(self) -> bool:
        return self._outcome is None or self._outcome.done()

    def _settle(self, reply: Message | None) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(reply)  # type: ignore[arg-type]


__all__ = ["Lifespan"]
