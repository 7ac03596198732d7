"""Logs: one access line per request, in the same format on both fronts and every side.

Real servers, real clients; the lines are read from the server's output (or its --access-log
file) once they are written, which may be up to a second after the response (``app.log_writer``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from twisted.internet.task import Clock
from websockets.sync.client import connect

from app.access_log import AccessRecord, SideOf, combined
from app.log_writer import BufferedLines
from tests.app.test_twistd import TWISTD, _install_plugin
from tests.conftest import LOCAL, HybridProcess, hybrid_argv, running
from tests.servers import wait_for

SIDES = ("twisted", "asgi", "wsgi")
FRONTS = ("twisted", "hypercorn")
JSON_FIELDS = {"side", "method", "path", "status", "bytes", "duration", "client", "worker"}

Start = Callable[..., HybridProcess]


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def _await_lines(read: Callable[[], str], needle: str, count: int) -> list[str]:
    wait_for(lambda: len(_lines(read(), needle)) >= count, f"{count} access lines with {needle!r}")
    return _lines(read(), needle)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _request_every_side(server: HybridProcess) -> None:
    with httpx.Client(headers={"user-agent": "probe/1"}) as client:
        for side in SIDES:
            assert client.get(f"{server.url}/{side}/delayed?delay=0").status_code == 200


@pytest.mark.parametrize("front", FRONTS)
def test_combined_lines_alike_on_every_side_without_twisted_prefix(hybrid_server: Start, front: str) -> None:
    """Default: a combined-format line per request on stdout, identical but for the path and time."""
    server = hybrid_server("--server", front)
    _request_every_side(server)
    shapes = set()
    for side in SIDES:
        (line,) = _await_lines(server.log, f"GET /{side}/delayed", 1)
        assert re.fullmatch(
            rf'127\.0\.0\.1 - - \[\d\d/\w\w\w/\d{{4}}:\d\d:\d\d:\d\d \+0000\] "GET /{side}/delayed\?delay=0 HTTP/1\.1" '
            r'200 52 "-" "probe/1"',
            line,
        ), line
        shapes.add(re.sub(r"\[[^]]*\]", "[time]", line).replace(f"/{side}/", "/SIDE/"))
    assert len(shapes) == 1
    assert "twisted.python.log" not in server.log()


def test_both_fronts_write_the_same_line(hybrid_server: Start) -> None:
    lines = []
    for front in FRONTS:
        server = hybrid_server("--server", front)
        httpx.get(f"{server.url}/asgi/stream?delay=0", headers={"user-agent": "probe/1"})
        (line,) = _await_lines(server.log, "GET /asgi/stream", 1)
        lines.append(re.sub(r"\[[^]]*\]", "[time]", line))
    assert lines[0] == lines[1]
    assert lines[0].endswith('"GET /asgi/stream?delay=0 HTTP/1.1" 200 161 "-" "probe/1"')


@pytest.mark.parametrize("front", FRONTS)
def test_json_lines_carry_every_field(hybrid_server: Start, tmp_path: Path, front: str) -> None:
    """--access-log-format json --access-log FILE: one object per request in FILE, none on stdout."""
    path = tmp_path / "access.log"
    server = hybrid_server("--server", front, "--access-log-format", "json", "--access-log", str(path))
    _request_every_side(server)
    httpx.head(f"{server.url}/twisted/stream?delay=5")

    records = [json.loads(line) for line in _await_lines(lambda: _read(path), '"method"', 4)]
    assert all(set(record) >= JSON_FIELDS for record in records)
    by_path = {record["path"]: record for record in records}
    for side in SIDES:
        record = by_path[f"/{side}/delayed"]
        assert (record["side"], record["method"], record["status"], record["bytes"]) == (side, "GET", 200, 52)
        assert (record["client"], record["worker"], record["query"]) == ("127.0.0.1", None, "delay=0")
        assert record["duration"] >= 0
    head = by_path["/twisted/stream"]
    assert (head["method"], head["status"], head["bytes"]) == ("HEAD", 200, 0)
    assert '"GET /' not in server.log() and '"method"' not in server.log()


def test_no_access_log(hybrid_server: Start) -> None:
    """--no-access-log: requests leave no line (the stop flushes whatever is kept, so checking after it is final)."""
    server = hybrid_server("--no-access-log")
    _request_every_side(server)
    assert server.stop() == 0
    assert "GET /" not in server.log()


def test_access_log_flushed_on_stop(hybrid_server: Start) -> None:
    """Lines still kept when the server stops are written before it exits."""
    server = hybrid_server()
    _request_every_side(server)
    assert server.stop() == 0
    assert len(_lines(server.log(), "/delayed?delay=0")) == 3


def test_workers_lines_name_their_worker(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    argv = hybrid_argv("--workers", "2", "--access-log-format", "json", "--access-log", str(path))
    with running(argv) as server:
        for _ in range(4):
            httpx.get(f"{server.url}/twisted/delayed?delay=0")
        records = [json.loads(line) for line in _await_lines(lambda: _read(path), '"method"', 4)]
    assert {record["worker"] for record in records} <= {0, 1, 2}  # ids as the supervisor numbers them
    assert all(isinstance(record["worker"], int) for record in records)


def test_log_level_warn_keeps_info_out(tmp_path: Path) -> None:
    """--log-level warn: the startup line (info) is not written; access lines still are."""
    sock = tmp_path / "s"
    out = tmp_path / "out.log"
    argv = hybrid_argv("--listen", f"unix:{sock}", "--log-level", "warn")
    with out.open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(out.read_text())
            with socket.socket(socket.AF_UNIX) as probe:
                return probe.connect_ex(str(sock)) == 0

        wait_for(listening, "the server to listen on its socket")
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.get("http://unix/healthz").status_code == 200
        _await_lines(out.read_text, "GET /healthz", 1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    text = out.read_text()
    assert "hybrid serving on" not in text
    assert "Starting factory" not in text
    assert "#info]" not in text


def test_bad_log_options_are_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--access-log-format", "xml"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "argument --access-log-format: invalid choice: 'xml'" in result.stderr


# -- pure logic ---------------------------------------------------------------


def _record(**changes: Any) -> AccessRecord:
    fields: dict[str, Any] = {
        "time": 0.0,
        "side": "twisted",
        "method": "GET",
        "path": "/twisted/delayed",
        "query": "",
        "protocol": "HTTP/1.1",
        "status": 200,
        "bytes": 0,
        "duration": 0.5,
        "client": "10.0.0.1",
        "worker": None,
        "referer": "",
        "user_agent": "",
    }
    fields.update(changes)
    return AccessRecord(**fields)


def test_combined_escapes_what_would_break_a_field() -> None:
    line = combined(_record(user_agent='evil" "x\n', path="/a b"))
    assert line == '10.0.0.1 - - [01/Jan/1970:00:00:00 +0000] "GET /a b HTTP/1.1" 200 - "-" "evil\\" \\"x\\n"'


def test_side_of_prefers_the_longest_prefix() -> None:
    side_of = SideOf(["/asgi/extra", "/api"])
    assert [side_of(p) for p in ("/asgi/x", "/asgi/extra/y", "/api", "/apiary", "/")] == [
        "asgi",
        "/asgi/extra",
        "/api",
        "site",
        "site",
    ]


def test_buffered_lines_write_in_blocks(tmp_path: Path) -> None:
    """Nothing is written per line: a block when the interval has passed or the size is reached."""
    clock = Clock()
    path = tmp_path / "a.log"
    lines = BufferedLines(clock, str(path), interval=1.0, max_bytes=30)
    lines.startService()
    lines.add("first")
    lines.add("second")
    assert _read(path) == ""
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(1.0)
    assert _read(path) == "first\nsecond\n"
    assert clock.getDelayedCalls() == []  # quiet: no timer pending
    lines.add("x" * 40)  # over max_bytes: written at once
    assert _read(path).endswith("x" * 40 + "\n")
    lines.add("last")
    lines.stopService()
    assert _read(path).endswith("last\n")
    lines.add("after the stop")  # a request still draining
    assert _read(path).endswith("after the stop\n")


@pytest.mark.parametrize("front", FRONTS)
def test_websocket_handshake_is_one_line(hybrid_server: Start, front: str) -> None:
    """A WebSocket is logged once, at its handshake's 101, on both fronts."""
    server = hybrid_server("--server", front)
    with connect(server.url.replace("http://", "ws://") + "/asgi/live", user_agent_header="probe/1") as ws:
        ws.recv(timeout=10)
    (line,) = _await_lines(server.log, "GET /asgi/live", 1)
    assert line.endswith('"GET /asgi/live HTTP/1.1" 101 - "-" "probe/1"'), line
    assert server.stop() == 0
    assert len(_lines(server.log(), "GET /asgi/live")) == 1


def test_twistd_plugin_takes_the_log_options(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path)
    path = tmp_path / "access.log"
    argv = [TWISTD, "-n", "--pidfile=", "hybrid", "--listen", LOCAL, "--access-log-format", "json"]
    with running([*argv, "--access-log", str(path)], env=env, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/asgi/delayed?delay=0").status_code == 200
        (line,) = _await_lines(lambda: _read(path), "/asgi/delayed", 1)
    record = json.loads(line)
    assert (record["side"], record["path"], record["status"]) == ("asgi", "/asgi/delayed", 200)


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("side", SIDES[:2])  # the WSGI side's sleeping thread only notices at its end (app.wsgi_app)
def test_a_client_that_leaves_is_logged_alike_on_both_fronts(hybrid_server: Start, front: str, side: str) -> None:
    """A client that hangs up before its response began: one line with 499 (nginx's status), on both fronts."""
    server = hybrid_server("--server", front)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /{side}/delayed?delay=60 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\n\r\n".encode())
        wait_for(lambda: httpx.get(f"{server.url}/stats").json()[side]["in_flight"] == 1, "in flight")
    (line,) = _await_lines(server.log, f"GET /{side}/delayed?delay=60", 1)
    assert line.endswith(f'"GET /{side}/delayed?delay=60 HTTP/1.1" 499 - "-" "probe/1"'), line
