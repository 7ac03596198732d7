"""The instrumented ASGI app that every conformance test talks to.

Both fronts (the bridge and Hypercorn) serve this same app.  It does two jobs:

* **Records** what the server hands it -- the scope, every ``receive()``
  result, every ``send()`` outcome (ok, or the exception's class and whether
  it is an ``OSError``) -- keyed by a request id the test chooses.
* **Replies as instructed**: the test puts a script (a JSON list of steps, see
  ``_step``) in the ``x-probe-script`` header.  Steps that wait do so on named
  gates (``asyncio.Event``) that a separate control request releases, so no
  test needs to sleep.

Control endpoints live under ``<root_path>/_ctl/``: ``record/<id>``,
``release/<gate>``, ``stats`` (task and timer counts, to prove nothing is
left behind) and ``events`` (the order of lifespan steps and app calls).
Lifespan behaviour is chosen per process (``lifespan=`` below); SIGUSR1
releases the gate named ``usr1``, for moments when no HTTP can get in
(startup, shutdown).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import signal
import sys
from collections.abc import Callable
from typing import Any

from tests.conformance import wire

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

ID_HEADER = b"x-probe-id"
SCRIPT_HEADER = b"x-probe-script"
CONTROL_PREFIX = "/_ctl/"
#: Bodies up to this size are recorded whole; larger ones only by length.
RECORDED_BODY_LIMIT = 4096
#: What a request without a script does: read the body, answer with the record.
DEFAULT_SCRIPT: list[dict[str, Any]] = [{"op": "receive_body"}, {"op": "reply"}]
LIFESPAN_MODES = ("normal", "gate", "fail", "raise", "raise-startup", "shutdown-fail")


class ProbeError(RuntimeError):
    """Raised on purpose by a script's ``raise`` step."""


class Probe:
    """An ASGI 3 app that records everything and does what the request's script says."""

    def __init__(self, *, lifespan: str = "normal", stats: Callable[[], dict[str, int]] | None = None) -> None:
        if lifespan not in LIFESPAN_MODES:
            raise ValueError(f"lifespan mode {lifespan!r} is not one of {LIFESPAN_MODES}")
        self.lifespan_mode = lifespan
        self._extra_stats = stats
        self.records: dict[str, dict[str, Any]] = {}
        #: The order in which lifespan steps happened and http scopes arrived.
        self.events: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}
        self._kept: list[Scope] = []
        self._anonymous = itertools.count()

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the probe serves http only, not {scope['type']!r}")
        path, root = scope["path"], scope.get("root_path", "")
        relative = path[len(root) :] if path.startswith(root) else path
        if relative.startswith(CONTROL_PREFIX):
            await self._control(relative[len(CONTROL_PREFIX) :], receive, send)
        else:
            await self._scripted(scope, receive, send)

    # -- control endpoints ------------------------------------------------------

    async def _control(self, command: str, receive: Receive, send: Send) -> None:
        await receive()
        verb, _, arg = command.partition("/")
        if verb == "record" and arg in self.records:
            await _reply_json(send, self.records[arg])
        elif verb == "release":
            self.gate(arg).set()
            await _reply_json(send, {"released": arg})
        elif verb == "stats":
            await _reply_json(send, self.stats())
        elif verb == "events":
            await _reply_json(send, self.events)
        else:
            await _reply_json(send, {"error": f"no such control endpoint {command!r}"}, status=404)

    def stats(self) -> dict[str, int]:
        """Counts that must return to their baseline once a request is over."""
        loop = asyncio.get_running_loop()
        counts = {
            "tasks": len(asyncio.all_tasks(loop)),
            # asyncio keeps no public count of pending call_later handles.
            "timers": len(getattr(loop, "_scheduled", ())),
        }
        if self._extra_stats is not None:
            counts.update(self._extra_stats())
        return counts

    # -- scripted requests --------------------------------------------------------

    async def _scripted(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        rid = headers.get(ID_HEADER, b"").decode() or f"anonymous-{next(self._anonymous)}"
        script = wire.decode_header(headers[SCRIPT_HEADER]) if SCRIPT_HEADER in headers else DEFAULT_SCRIPT
        record: dict[str, Any] = {
            "id": rid,
            "scope": wire.tag(scope),
            "scope_id": id(scope),
            "loop_id": id(asyncio.get_running_loop()),
            "steps": [],
            "received_bytes": 0,
            "received_messages": 0,
            "sent_chunks": 0,
            "waiting": None,
            "done": False,
            "outcome": None,
        }
        self.records[rid] = record
        self.events.append(f"http:{rid}")
        try:
            for step in script:
                if step["op"] == "return":
                    break
                await self._step(step, record, scope, receive, send)
            record["outcome"] = "returned"
        except BaseException as e:
            record["outcome"] = f"raised {type(e).__name__}"
            raise
        finally:
            record["done"] = True
            self._mark(f"http:{rid}:done")

    async def _step(
        self, step: dict[str, Any], record: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        op = step["op"]
        log = record["steps"]
        if op == "receive":
            record["waiting"] = "receive"
            message = await receive()
            record["waiting"] = None
            log.append({"op": op, "message": _describe(message)})
        elif op == "receive_body":
            await _receive_body(record, receive, step.get("until"))
        elif op == "receive_until_gate":
            # Is receive() still blocked when the gate opens?  (asgiref#533)
            pending = asyncio.ensure_future(receive())
            opened = asyncio.ensure_future(self.gate(step["gate"]).wait())
            await asyncio.wait({pending, opened}, return_when=asyncio.FIRST_COMPLETED)
            blocked = not pending.done()
            opened.cancel()
            if blocked and step["give_up"]:
                pending.cancel()
                log.append({"op": op, "blocked": blocked, "message": None})
                return
            record["waiting"] = "receive"
            message = await pending
            record["waiting"] = None
            log.append({"op": op, "blocked": blocked, "message": _describe(message)})
        elif op == "send":
            await _send(send, step["message"], log, catch=step.get("catch", False))
        elif op == "stream":
            await _stream(send, step, record)
        elif op == "gate":
            record["waiting"] = step["gate"]
            await self.gate(step["gate"]).wait()
            record["waiting"] = None
            log.append({"op": op, "gate": step["gate"]})
        elif op == "raise":
            raise ProbeError(step.get("message", "the script said raise"))
        elif op == "reply":
            body = wire.dumps(record)
            await _send(send, _start(200, [(b"content-type", b"application/json")]), log)
            await _send(send, {"type": "http.response.body", "body": body}, log)
        elif op == "state":
            for key, value in step.get("set", {}).items():
                scope["state"][key] = value
            for key, value in step.get("append", {}).items():
                scope["state"][key].append(value)
        elif op == "mutate_scope":
            scope["path"] = "/mutated"
            scope["query_string"] = b"mutated"
            if isinstance(scope["headers"], list):
                scope["headers"].append((b"x-mutated", b"1"))
            self._kept.append(scope)  # alive, so a later scope cannot reuse its id
        else:
            raise ValueError(f"unknown script step {op!r}")

    # -- lifespan -----------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        # A plain handler, not loop.add_signal_handler: Twisted's reactor owns
        # the signal wakeup fd, so asyncio's signal handlers might never run.
        signal.signal(signal.SIGUSR1, lambda *_: loop.call_soon_threadsafe(self.gate("usr1").set))
        mode = self.lifespan_mode
        self._mark("lifespan:called", f"asgi={scope['asgi']} state={'state' in scope}")
        if mode == "raise":
            raise ProbeError("this probe does not do lifespan")
        self._mark(f"lifespan:{(await receive())['type']}")
        if mode == "raise-startup":
            raise ProbeError("this probe fails while handling lifespan.startup")
        if mode == "fail":
            await send({"type": "lifespan.startup.failed", "message": "boom"})
            return
        scope["state"].update(k="v", shared=[], loop_id=id(loop))
        if mode == "gate":
            await self.gate("usr1").wait()
        await send({"type": "lifespan.startup.complete"})
        self._mark("lifespan:startup.complete")
        self._mark(f"lifespan:{(await receive())['type']}")
        if mode == "shutdown-fail":
            await send({"type": "lifespan.shutdown.failed", "message": "shutdown-went-wrong"})
            return
        await send({"type": "lifespan.shutdown.complete"})
        self._mark("lifespan:shutdown.complete")

    def _mark(self, event: str, detail: str = "") -> None:
        """Note an event, and print it: around shutdown no HTTP can ask."""
        self.events.append(event)
        print(f"PROBE {event} {detail}".rstrip(), file=sys.stdout, flush=True)


class LegacyProbe:
    """The probe in legacy ASGI 2 form: ``app(scope)`` returns ``instance(receive, send)``."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def __call__(self, scope: Scope) -> Callable[[Receive, Send], Any]:
        async def instance(receive: Receive, send: Send) -> None:
            await self.probe(scope, receive, send)

        return instance


# -- helpers ---------------------------------------------------------------------


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers}


async def _reply_json(send: Send, value: Any, status: int = 200) -> None:
    body = wire.dumps(value)
    await send(_start(status, [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]))
    await send({"type": "http.response.body", "body": body})


def _describe(message: Message) -> dict[str, Any]:
    """A message as recorded: whole, except that big bodies are summarised."""
    described = {k: v for k, v in message.items() if k != "body"}
    if "body" in message:
        body = message["body"]
        described["body_type"] = type(body).__name__
        described["body_len"] = len(body)
        if len(body) <= RECORDED_BODY_LIMIT:
            described["body"] = body
    return described


async def _receive_body(record: dict[str, Any], receive: Receive, until: int | None) -> None:
    """Read ``http.request`` messages until the last (or ``until`` bytes), counting as it goes."""
    digest = hashlib.sha256()
    summary: dict[str, Any] = {"op": "receive_body", "types": [], "final_at": [], "body_types": []}
    record["steps"].append(summary)
    index = 0
    while until is None or record["received_bytes"] < until:
        message = await receive()
        if message["type"] != "http.request":
            summary["types"].append(message["type"])
            break
        body = message.get("body", b"")
        if type(body).__name__ not in summary["body_types"]:
            summary["body_types"].append(type(body).__name__)
        digest.update(body)
        record["received_bytes"] += len(body)
        record["received_messages"] += 1
        if not message.get("more_body", False):
            summary["final_at"].append(index)
            break
        index += 1
    summary["sha256"] = digest.hexdigest()


async def _send(send: Send, message: Message, log: list[Any], *, catch: bool = False, quiet: bool = False) -> bool:
    """Send and record the outcome (successes only unless ``quiet``); re-raise unless ``catch``."""
    try:
        await send(message)
    except Exception as e:
        log.append(
            {
                "op": "send",
                "type": message.get("type"),
                "error": type(e).__name__,
                "oserror": isinstance(e, OSError),
                "message": str(e),
            }
        )
        if not catch:
            raise
        return False
    if not quiet:
        log.append({"op": "send", "type": message.get("type"), "ok": True})
    return True


async def _stream(send: Send, step: dict[str, Any], record: dict[str, Any]) -> None:
    """Send ``count`` copies of one ``chunk``-byte block: big bodies, no big allocations."""
    chunk = b"x" * step["chunk"]
    count = step["count"]
    headers = [(b"content-type", b"application/octet-stream")]
    if step.get("length", True):
        headers.append((b"content-length", b"%d" % (len(chunk) * count)))
    log = record["steps"]
    catch = step.get("catch", False)
    if not await _send(send, _start(200, headers), log, catch=catch):
        return
    for i in range(count):
        message = {"type": "http.response.body", "body": chunk, "more_body": i < count - 1}
        if not await _send(send, message, log, catch=catch, quiet=True):
            return
        record["sent_chunks"] += 1
