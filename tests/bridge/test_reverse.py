"""The reverse adapter under Hypercorn: legacy Twisted resources, unchanged, over real sockets.

Each test starts its own Hypercorn subprocess (``reverse_server.py``) serving an app from
``reverse_app.py``, so counters in ``/stats`` belong to that test alone.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.bridge.reverse_server import Server, hypercorn

#: The tutorial's body (not imported from reverse_legacy: that imports the reactor).
BODY = b"<html><body>Sorry to keep you waiting.</body></html>"

POLL_TIMEOUT = 20.0


@pytest.fixture
def files(tmp_path: Path) -> Path:
    directory = tmp_path / "files"
    directory.mkdir()
    (directory / "hello.txt").write_bytes(b"hello from static.File\n")
    (directory / "sub").mkdir()
    return directory


@pytest.fixture
def server(tmp_path: Path, files: Path) -> Iterator[Server]:
    with hypercorn("app", tmp_path, env={"REVERSE_FILES": str(files)}) as running:
        yield running


def stats(server: Server) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(server.url + "/stats").json()
    return result


def wait_for_stats(server: Server, **expected: int) -> dict[str, Any]:
    """Poll ``/stats`` until it shows ``expected``, within a bounded deadline."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        current = stats(server)
        if all(current[key] == value for key, value in expected.items()):
            return current
        assert time.monotonic() < deadline, f"/stats never reached {expected}: {current}"
        time.sleep(0.02)


def wait_for_log(server: Server, text: str) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    while text not in server.output():
        assert time.monotonic() < deadline, f"{text!r} never logged:\n{server.output()}"
        time.sleep(0.02)


def test_fifty_concurrent_delayed_requests_are_all_in_flight_at_once(server: Server) -> None:
    """The tutorial's claim: a pending NOT_DONE_YET request does not hold up the others."""
    limits = httpx.Limits(max_connections=50)
    with httpx.Client(limits=limits, timeout=30) as client, ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(lambda _: client.get(server.url + "/tutorial?delay=2"), range(50)))
    assert [(r.status_code, r.content) for r in responses] == [(200, BODY)] * 50
    final = stats(server)
    assert final["peak"] == 50
    assert (final["completed"], final["in_flight"], final["pending_delayed_calls"]) == (50, 0, 0)


def test_abandoned_request_cancels_its_call_later(server: Server) -> None:
    """http.disconnect fails notifyFinish(), whose errback cancels the delayed call."""
    client = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    client.sendall(b"GET /tutorial?delay=30 HTTP/1.1\r\nHost: test\r\n\r\n")
    wait_for_stats(server, in_flight=1, pending_delayed_calls=1)
    client.close()
    final = wait_for_stats(server, cancelled=1)
    assert (final["in_flight"], final["completed"], final["pending_delayed_calls"]) == (0, 0, 0)


def test_twisted_default_headers_as_on_a_native_site(server: Server) -> None:
    response = httpx.get(server.url + "/tutorial?delay=0")
    assert response.content == BODY
    assert response.headers.get_list("server")[0].startswith("TwistedWeb/")
    assert len(response.headers.get_list("server")) == 1
    assert len(response.headers.get_list("date")) == 1
    assert response.headers.get_list("content-type") == ["text/html"]
    # No Content-Length: Twisted would chunk; the ASGI server frames the body instead, once.
    assert response.headers.get_list("transfer-encoding") == ["chunked"]


def test_request_attributes_come_from_the_scope(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    with httpx.Client() as client:
        info = client.get(server.url + "/info/extra?a=1&b=%20x", headers={"X-Legacy": "yes"}).json()
    assert info["method"] == "GET"
    assert info["uri"] == "/info/extra?a=1&b=%20x"
    assert (info["path"], info["prepath"], info["postpath"]) == ("/info/extra", ["info"], ["extra"])
    assert info["clientproto"] == "HTTP/1.1"
    assert info["client"][:2] == ["IPv4Address", "127.0.0.1"]
    assert info["host"] == ["IPv4Address", "127.0.0.1", port]
    assert info["secure"] is False
    assert info["prePathURL"] == f"http://127.0.0.1:{port}/info"
    assert info["headers"]["X-Legacy"] == ["yes"]


def test_reactor_runs_on_the_servers_loop_without_a_thread(server: Server) -> None:
    assert httpx.get(server.url + "/loop").text == "same loop: True, threads: 1"


def test_http2_request(server: Server) -> None:
    """Over h2 the version is ``HTTP/2`` (as Twisted's H2Stream says) and nothing is chunked."""
    with httpx.Client(http1=False, http2=True) as client:
        info = client.get(server.url + "/info")
        delayed = client.get(server.url + "/tutorial?delay=0")
    assert (info.http_version, info.json()["clientproto"]) == ("HTTP/2", "HTTP/2")
    assert (delayed.status_code, delayed.content) == (200, BODY)
    assert "transfer-encoding" not in delayed.headers


def test_failing_resource_gets_twisteds_500_and_the_traceback_is_logged(server: Server) -> None:
    response = httpx.get(server.url + "/broken")
    assert response.status_code == 500
    assert "legacy resource failed on purpose" not in response.text
    wait_for_log(server, "RuntimeError: legacy resource failed on purpose")
    assert httpx.get(server.url + "/loop").status_code == 200


def test_static_file_directory_listing_and_redirect(server: Server) -> None:
    """Third-party resources: Twisted's own static.File listing and util.Redirect."""
    listing = httpx.get(server.url + "/files/")
    assert listing.status_code == 200
    assert '<a href="hello.txt">hello.txt</a>' in listing.text
    assert '<a href="sub/">sub/</a>' in listing.text
    assert httpx.get(server.url + "/files/hello.txt").content == b"hello from static.File\n"
    moved = httpx.get(server.url + "/moved")
    assert (moved.status_code, moved.headers["location"]) == (302, "files/")
    followed = httpx.get(server.url + "/moved", follow_redirects=True)
    assert followed.url.path == "/files/"
    assert "Directory listing for /files/" in followed.text


@pytest.mark.parametrize(
    ("size", "spooled"),
    [(10_000, False), (250_000, True)],
    ids=["in-memory", "spooled-to-temp-file"],
)
def test_request_body_reaches_request_content(server: Server, size: int, spooled: bool) -> None:
    """Twisted's rule: a declared length under 100 kB in memory, anything else in a file."""
    body = bytes(range(256)) * (size // 256)
    described = httpx.post(server.url + "/body", content=body).json()
    assert described["length"] == len(body)
    assert described["sha256"] == hashlib.sha256(body).hexdigest()
    assert described["spooled_to_file"] is spooled


def test_streamed_request_body_is_spooled_like_a_chunked_upload(server: Server) -> None:
    parts = [b"a" * 40_000, b"b" * 40_000, b"c" * 40_000]
    described = httpx.post(server.url + "/body", content=iter(parts)).json()
    assert described["length"] == 120_000
    assert described["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    assert described["spooled_to_file"] is True


def test_form_body_fills_request_args(server: Server) -> None:
    described = httpx.post(server.url + "/body", data={"name": "twisted", "v": "26"}).json()
    assert described["args"] == {"name": ["twisted"], "v": ["26"]}


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_body_over_the_limit_is_refused_with_413(server: Server, declared: bool) -> None:
    body = b"x" * 300_001
    content: bytes | Iterator[bytes] = body if declared else iter([body[:200_000], body[200_000:]])
    response = httpx.post(server.url + "/body", content=content)
    assert response.status_code == 413
    assert response.text == "Request body too large\n"
    assert httpx.get(server.url + "/loop").status_code == 200


def test_sessions_and_cookies(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        first = client.get("/session")
        assert first.text == "visit 1, cookie none"
        assert "TWISTED_SESSION" in client.cookies
        assert client.get("/session").text == "visit 2, cookie oatmeal"
    assert httpx.get(server.url + "/session").text == "visit 1, cookie none"


def test_head_keeps_headers_and_drops_the_body(server: Server) -> None:
    response = httpx.head(server.url + "/files/hello.txt")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(b"hello from static.File\n"))
    assert response.content == b""


def test_mounted_under_a_starlette_prefix(tmp_path: Path, files: Path) -> None:
    """root_path becomes prepath: URLs, redirects and session cookies carry the prefix."""
    env = {"REVERSE_FILES": str(files)}
    with hypercorn("mounted", tmp_path, env=env, ready_path="/legacy/loop") as mounted:
        port = int(mounted.url.rsplit(":", 1)[1])
        info = httpx.get(mounted.url + "/legacy/info").json()
        assert (info["prepath"], info["path"]) == (["legacy", "info"], "/legacy/info")
        assert info["prePathURL"] == f"http://127.0.0.1:{port}/legacy/info"
        followed = httpx.get(mounted.url + "/legacy/moved", follow_redirects=True)
        assert followed.url.path == "/legacy/files/"
        assert '<a href="hello.txt">hello.txt</a>' in followed.text
        session = httpx.get(mounted.url + "/legacy/session")
        assert "TWISTED_SESSION_legacy" in session.cookies
        assert httpx.get(mounted.url + "/legacy/loop").text == "same loop: True, threads: 1"
        assert mounted.stop() == 0
    assert "before ASGI lifespan startup" not in mounted.output()


def test_lifespan_starts_the_reactor_and_fires_shutdown_triggers(tmp_path: Path, files: Path) -> None:
    marker = tmp_path / "shutdown-marker"
    env = {"REVERSE_FILES": str(files), "REVERSE_SHUTDOWN_MARKER": str(marker)}
    with hypercorn("app", tmp_path, env=env) as running:
        assert httpx.get(running.url + "/tutorial?delay=0").content == BODY
        assert not marker.exists()
        assert running.stop() == 0
    assert marker.read_text() == "shutdown triggers fired"
    assert "before ASGI lifespan startup" not in running.output()


def test_without_lifespan_the_reactor_starts_on_the_first_request_with_a_warning(tmp_path: Path, files: Path) -> None:
    env = {"REVERSE_FILES": str(files)}
    with hypercorn("app_without_lifespan", tmp_path, env=env) as running:
        assert httpx.get(running.url + "/tutorial?delay=0").content == BODY
        assert httpx.get(running.url + "/loop").text == "same loop: True, threads: 1"
    log = running.output()
    assert log.count("TwistedResourceApp got a request before ASGI lifespan startup") == 1


def test_another_reactor_fails_lifespan_startup_with_instructions(tmp_path: Path, files: Path) -> None:
    env = {"REVERSE_FILES": str(files)}
    exited_early = pytest.raises(AssertionError, match="server exited early")
    with exited_early as failure, hypercorn("app_on_another_reactor", tmp_path, env=env):
        pass
    assert "needs Twisted's AsyncioSelectorReactor" in str(failure.value)
