"""Legacy modules as they are written, served by ``hypercorn module:app`` and ``uvicorn module:app``.

Both servers import the app module before they create their event loop, so a reactor installed
at import time sits on a loop that never runs; the adapter moves it onto the server's loop at
lifespan startup, with whatever the module scheduled at import.  See ``shapes/`` for the modules.
"""

from __future__ import annotations

import hashlib
import socket
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bridge.asgi_cli import SERVERS, CLIServer, serving, wait_for_exit

IMPORT_TIME_WORK = [
    "LoopingCall ticked twice",
    "adoptStreamConnection got 'written at import'",
    "callLater ran",
    "callWhenRunning ran",
    "connectTCP echoed 'hello over connectTCP'",
]


@pytest.fixture(params=SERVERS)
def server_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "hello.txt").write_bytes(b"hello from static.File\n")
    return tmp_path


def poll_events(server: CLIServer) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        answer: dict[str, Any] = httpx.get(server.url + "/events").json()
        if answer["events"] == IMPORT_TIME_WORK or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


def test_import_time_work_runs_on_the_servers_loop(server_name: str) -> None:
    with serving(server_name, "tests.bridge.shapes.plain:app", ready_path="/events") as server:
        answer = poll_events(server)
        assert answer["events"] == IMPORT_TIME_WORK
        assert answer["reactor_on_this_loop"] is True
        assert answer["loop"] == ("uvloop" if server_name == "uvicorn" else "asyncio")
        with socket.create_connection(("127.0.0.1", answer["echo_port"]), timeout=10) as echo:
            echo.sendall(b"listenTCP from import time")
            assert echo.recv(100) == b"listenTCP from import time"
        assert server.stop(), server.output()
        assert "Traceback" not in server.output()


@pytest.fixture(params=["eager", "factory"])
def shape(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def legacy(server_name: str, shape: str, files: Path) -> Iterator[CLIServer]:
    target = f"tests.bridge.shapes.{shape}:app"
    with serving(server_name, target, env={"LEGACY_FILES": str(files)}, ready_path="/klein/hello/x") as server:
        yield server


def test_klein_routes_and_deferreds(legacy: CLIServer) -> None:
    hello = httpx.get(legacy.url + "/klein/hello/world")
    assert (hello.status_code, hello.text) == (200, "hello world")
    later = httpx.get(legacy.url + "/klein/later")
    assert (later.status_code, later.text) == (200, "later, from a Deferred")
    assert httpx.get(legacy.url + "/klein/nowhere").status_code == 404



def test_static_file_and_redirect(legacy: CLIServer) -> None:
    assert httpx.get(legacy.url + "/files/hello.txt").content == b"hello from static.File\n"
    listing = httpx.get(legacy.url + "/files/")
    assert '<a href="hello.txt">hello.txt</a>' in listing.text
    moved = httpx.get(legacy.url + "/old-files")
    assert (moved.status_code, moved.headers["location"]) == (302, "/files/")


def test_xml_rpc(legacy: CLIServer) -> None:
    with xmlrpc.client.ServerProxy(legacy.url + "/rpc") as proxy:
        assert proxy.add(2, 40) == 42
        with pytest.raises(xmlrpc.client.Fault) as fault:
            proxy.fail()
    assert (fault.value.faultCode, fault.value.faultString) == (7, "failed on purpose")


def test_sessions(legacy: CLIServer) -> None:
    with httpx.Client(base_url=legacy.url) as client:
        assert [client.get("/visits").text for _ in range(3)] == ["visit 1", "visit 2", "visit 3"]
        assert list(client.cookies) == ["TWISTED_SESSION"]
    assert httpx.get(legacy.url + "/visits").text == "visit 1"


def test_multipart_upload(legacy: CLIServer) -> None:
    data = bytes(range(256)) * 1000
    response = httpx.post(legacy.url + "/upload", data={"title": "report"}, files={"file": ("r.bin", data)})
    assert response.text == f"report: 256000 bytes, sha256 {hashlib.sha256(data).hexdigest()}"


def test_not_done_yet_finishes_and_abandonment_cancels(legacy: CLIServer) -> None:
    assert httpx.get(legacy.url + "/delayed?delay=0.01").text == "finished after the delay\n"
    with socket.create_connection(("127.0.0.1", legacy.port)) as client:
        client.sendall(b"GET /delayed?delay=60 HTTP/1.1\r\nHost: test\r\n\r\n")
        wait_for_json(legacy, "/delayed-stats", {"pending": 1, "abandoned": 0})
    wait_for_json(legacy, "/delayed-stats", {"pending": 0, "abandoned": 1})


def wait_for_json(server: CLIServer, path: str, expected: dict[str, Any]) -> None:
    deadline = time.monotonic() + 20
    while (current := httpx.get(server.url + path).json()) != expected:
        assert time.monotonic() < deadline, f"{path} never showed {expected}: {current}"
        time.sleep(0.02)


def test_default_reactor_fails_startup_naming_the_import(server_name: str) -> None:
    with serving(server_name, "tests.bridge.shapes.default_reactor:app", ready_path=None) as server:
        wait_for_exit(server)  # Hypercorn's main process exits 0 when its worker failed
        log = server.output()
    assert "needs Twisted's AsyncioSelectorReactor" in log
    assert "at module level in: tests.bridge.shapes.default_reactor (" in log
    assert "Call bridge.install_reactor() in the ASGI app module before those imports." in log
