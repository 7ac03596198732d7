"""Checklist §5, assertions 87-95: lifespan, mostly on dedicated server processes.

The bridge runs the probe under ``bridge.LifespanService`` (serve_bridge.py),
Hypercorn under its own lifespan support; the probe's lifespan mode comes
from ``PROBE_LIFESPAN``.  Startup and shutdown happen when no HTTP request
can reach the probe, so it prints each step (``PROBE lifespan:...``) and the
tests read the server's output; SIGUSR1 opens the probe's ``usr1`` gate.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from pathlib import Path

import pytest

from tests.conformance import wire
from tests.conformance.fronts import KINDS, Front, Server, Spawn, wait_for, wait_until_listening
from tests.conformance.rawhttp import Connection
from tests.conformance.script import REPLY, body, gate, probe_headers, receive_body, start, state

READ = receive_body()
OK = [start(200, [(b"content-length", b"2")]), body(b"ok")]
TCP_LISTEN = "0A"


def listening_sockets(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` holds in LISTEN state (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == TCP_LISTEN and fields[9] in inodes:
                found.append(fields[1])
    return found


def marks(server: Server) -> list[str]:
    """The probe's ``PROBE <event>`` lines, in order."""
    return [line.split()[1] for line in server.log().splitlines() if line.startswith("PROBE ")]


def wait_mark(server: Server, mark: str) -> None:
    wait_for(lambda: mark in marks(server), f"{mark!r} in the {server.kind} server's output")


def refuses_connections(front: Front) -> bool:
    try:
        socket.create_connection((front.host, front.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_lifespan_startup_comes_first(front: Front) -> None:
    """87: the lifespan scope (asgi 3.0) is called and gets lifespan.startup before any http scope."""
    front.get("/l87", "l87")
    events = front.events()
    assert events[:3] == ["lifespan:called", "lifespan:lifespan.startup", "lifespan:startup.complete"]
    assert events.index("http:l87") > 2
    assert "PROBE lifespan:called asgi={" in front.server.log()
    assert "'version': '3.0'" in front.server.log()


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_listens_before_startup_completes(spawn: Spawn, kind: str) -> None:
    """88: while startup waits on a gate no socket listens; once it completes, requests are served."""
    server = spawn(kind, lifespan="gate", ready=False)
    wait_mark(server, "lifespan:lifespan.startup")
    assert listening_sockets(server.pid) == []
    server.signal(signal.SIGUSR1)
    server.info = wait_until_listening(server)
    front = Front.of(server)
    assert front.get("/l88", "l88").status_code == 200
    events = front.events()
    assert events.index("lifespan:startup.complete") < events.index("http:l88")


@pytest.mark.parametrize("kind", KINDS)
def test_startup_failure_exits_non_zero_with_the_message(spawn: Spawn, kind: str) -> None:
    """89: lifespan.startup.failed("boom"): the message is logged, the exit status is non-zero, nothing served."""
    server = spawn(kind, lifespan="fail", ready=False)
    assert server.wait_exit() != 0
    assert "boom" in server.log()
    assert "LISTENING" not in server.log()


@pytest.mark.parametrize("mode", ["raise", "raise-startup"])
@pytest.mark.parametrize("kind", KINDS)
def test_app_without_lifespan_is_served_without_it(spawn: Spawn, kind: str, mode: str) -> None:
    """90: an app raising on the lifespan scope (or on startup) is served, and never gets lifespan.shutdown."""
    server = spawn(kind, lifespan=mode)
    assert Front.of(server).get("/l90", "l90").status_code == 200
    server.signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert "lifespan:lifespan.shutdown" not in marks(server)


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_after_listeners_close_and_requests_drain(spawn: Spawn, kind: str) -> None:
    """91: on SIGTERM the listener closes, the in-flight request completes, then lifespan.shutdown; exit 0."""
    server = spawn(kind)
    front = Front.of(server)
    with Connection(front) as conn:
        conn.request("GET", "/slow", {**probe_headers("slow", READ, gate("usr1"), *OK), "Connection": "close"})
        front.wait_gate("slow", "usr1")
        server.signal(signal.SIGTERM)
        wait_for(lambda: refuses_connections(front), "the listener to close")
        assert server.proc.poll() is None
        assert "lifespan:lifespan.shutdown" not in marks(server)
        server.signal(signal.SIGUSR1)
        response = conn.read_response()
    assert (response.status, response.body) == (200, b"ok")
    assert server.wait_exit() == 0
    order = marks(server)
    assert order.index("http:slow:done") < order.index("lifespan:lifespan.shutdown")
    assert order.index("lifespan:lifespan.shutdown") < order.index("lifespan:shutdown.complete")


@pytest.mark.parametrize("kind", KINDS)
def test_shutdown_failure_is_logged_and_the_process_ends(spawn: Spawn, kind: str) -> None:
    """92: lifespan.shutdown.failed("...") is logged with its message and the server terminates."""
    server = spawn(kind, lifespan="shutdown-fail")
    server.signal(signal.SIGTERM)
    server.wait_exit()
    assert "shutdown-went-wrong" in server.log()


def test_state_is_a_shallow_copy_per_request(front: Front) -> None:
    """93, 94, 95: every request sees startup's state; top-level changes stay local, shared values are shared."""
    token = uuid.uuid4().hex
    first = wire.loads(
        front.get("/s1", f"s1-{token}", READ, state({"k": "changed", "n": 1}, append={"shared": token}), REPLY).content
    )
    second = wire.loads(front.get("/s2", f"s2-{token}").content)
    assert first["scope"]["state"]["k"] == "v"  # 93 (recorded before the app changed it)
    seen = second["scope"]["state"]
    assert seen["k"] == "v"  # 94: not "changed"
    assert "n" not in seen
    assert token in seen["shared"]  # shallow: the list object is shared
    assert first["loop_id"] == second["loop_id"] == seen["loop_id"]  # 95: startup's loop
