"""Building probe scripts in Python: each function returns one step.

A script is a list of steps the probe runs in order (see ``probe.Probe._step``);
``probe_headers`` packs it, with the request id, into request headers.
Messages are ordinary ASGI dicts with real bytes and real str -- the point of
several tests is to send the *wrong* types, so nothing here converts them.
"""

from __future__ import annotations

from typing import Any

from tests.conformance import wire
from tests.conformance.probe import ID_HEADER, SCRIPT_HEADER

Step = dict[str, Any]

RECEIVE: Step = {"op": "receive"}
REPLY: Step = {"op": "reply"}
RAISE: Step = {"op": "raise"}
RETURN: Step = {"op": "return"}
MUTATE_SCOPE: Step = {"op": "mutate_scope"}


def probe_headers(rid: str, *steps: Step) -> dict[str, str]:
    """Headers that name the request ``rid`` and, if given, script it."""
    headers = {ID_HEADER.decode(): rid}
    if steps:
        headers[SCRIPT_HEADER.decode()] = wire.encode_header(list(steps))
    return headers


def send(message: dict[str, Any], *, catch: bool = False) -> Step:
    """Send ``message``; with ``catch`` an exception from ``send`` is recorded and the script goes on."""
    return {"op": "send", "message": message, "catch": catch}


def start(status: Any = 200, headers: Any = (), *, catch: bool = False, **extra: Any) -> Step:
    message = {"type": "http.response.start", "status": status, "headers": list(headers), **extra}
    return send(message, catch=catch)


def body(data: Any = b"", *, more: bool = False, catch: bool = False) -> Step:
    return send({"type": "http.response.body", "body": data, "more_body": more}, catch=catch)


def receive_body(until: int | None = None) -> Step:
    """Read the request body (or its first ``until`` bytes), recording counts and a digest."""
    return {"op": "receive_body", "until": until}


def receive_until_gate(gate: str, *, give_up: bool = False) -> Step:
    """Race receive() against a gate and record which came first; ``give_up`` cancels a receive still blocked."""
    return {"op": "receive_until_gate", "gate": gate, "give_up": give_up}


def gate(name: str) -> Step:
    return {"op": "gate", "gate": name}


def stream(chunk: int, count: int, *, length: bool = True, catch: bool = False) -> Step:
    """Respond 200 with ``count`` bodies of ``chunk`` bytes each."""
    return {"op": "stream", "chunk": chunk, "count": count, "length": length, "catch": catch}


def state(set_: dict[str, Any] | None = None, append: dict[str, Any] | None = None) -> Step:
    return {"op": "state", "set": set_ or {}, "append": append or {}}


def sent(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``send`` outcomes in a record, in order."""
    return [s for s in record["steps"] if s["op"] == "send"]


def send_errors(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in sent(record) if "error" in s]
