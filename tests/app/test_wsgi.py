"""The WSGI side's URLs over real sockets: the tutorial's answers, validation, and its /stats entry.

The other two sides are the reference: for every request the WSGI side must answer with the
same status and body byte for byte, and the same headers but ``Date``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.sides import ENDPOINTS, SIDES
from app.tutorial import BODY, stream_parts
from tests.conftest import HybridProcess, hybrid_argv, running
from tests.servers import wait_for

BAD_DELAYS = ["abc", "-1", "60.5", "nan", "inf", "1e1", "", "%201", "1_0", "0x10", "%C3%A9", "+1"]
#: Requests every side must answer alike (under its own prefix).
TWINS = [
    "delayed?delay=0.01",
    "stream?delay=0.01",
    "delayed",
    "delayed?delay=x",
    "stream?delay=99",
    "delayed?delay=1&delay=2",
    "stream?delay=",
]


#: About 1 in 200 such clients left inside the window before the outcome was settled from Twisted's side.
CLOSING_CLIENTS = 400
Start = Callable[..., HybridProcess]


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    with running(hybrid_argv("--delay", "0.01")) as server:
        yield server


def wsgi_stats(server: HybridProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/stats").json()["wsgi"]
    return result


def test_delayed_body_is_the_tutorials(server: HybridProcess) -> None:
    response = httpx.get(f"{server.url}/wsgi/delayed?delay=0.2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-length"] == str(len(BODY))
    assert response.content == BODY


def test_stream_body_is_complete(server: HybridProcess) -> None:
    response = httpx.get(f"{server.url}/wsgi/stream?delay=0.05")
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == b"".join(stream_parts())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("delay", BAD_DELAYS)
def test_bad_delay_is_a_400(server: HybridProcess, endpoint: str, delay: str) -> None:
    response = httpx.get(f"{server.url}/wsgi/{endpoint}?delay={delay}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "delay must be a number of seconds between 0 and 60\n"


def test_repeated_delay_is_a_400(server: HybridProcess) -> None:
    response = httpx.get(f"{server.url}/wsgi/delayed?delay=1&delay=2")
    assert (response.status_code, response.text) == (400, "delay must be given at most once\n")


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {name: value for name, value in response.headers.items() if name != "date"}
    return response.status_code, response.content, headers


@pytest.mark.parametrize("request_path", TWINS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("reference", ["twisted", "asgi"])
def test_answers_like_the_other_sides(server: HybridProcess, request_path: str, method: str, reference: str) -> None:
    """Status and body byte for byte, headers value for value (but Date)."""
    wsgi = httpx.request(method, f"{server.url}/wsgi/{request_path}")
    other = httpx.request(method, f"{server.url}/{reference}/{request_path}")
    assert _comparable(wsgi) == _comparable(other)
    assert "date" in wsgi.headers


def test_unknown_path_and_method(server: HybridProcess) -> None:
    assert httpx.get(f"{server.url}/wsgi/nowhere").status_code == 404
    refused = httpx.post(f"{server.url}/wsgi/delayed")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")


def test_client_closing_after_the_last_byte_has_completed(hybrid_server: Start) -> None:
    """A client may close as soon as it has Content-Length bytes, before WSGIResource's finish().

    It got the whole response: completed, not abandoned. The window is short (the finish is
    one reactor turn after the last write), so the test closes that way many times.
    """
    server = hybrid_server()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    for _ in range(CLOSING_CLIENTS):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET /wsgi/delayed?delay=0 HTTP/1.1\r\nHost: test\r\n\r\n")
            received = b""
            while not received.endswith(BODY):
                received += sock.recv(65536)
    wait_for(lambda: wsgi_stats(server)["in_flight"] == 0, "the last thread to be done")
    stats = wsgi_stats(server)
    assert (stats["completed"], stats["abandoned"]) == (CLOSING_CLIENTS, 0)


def test_stats_count_the_wsgi_side(server: HybridProcess) -> None:
    """Completed requests land in their own /stats entry, with the same shape as the other sides'."""
    before = wsgi_stats(server)
    for endpoint in ENDPOINTS:
        assert httpx.get(f"{server.url}/wsgi/{endpoint}?delay=0").status_code == 200
    httpx.get(f"{server.url}/wsgi/delayed?delay=x")  # a 400 is not counted, as on the other sides
    # The outcome reaches the reactor thread by callFromThread: the body can arrive first.
    wait_for(lambda: wsgi_stats(server)["completed"] == before["completed"] + 2, "the completions to be counted")
    after = httpx.get(f"{server.url}/stats").json()
    assert list(after)[: len(SIDES)] == list(SIDES)
    assert set(after["wsgi"]) == set(after["twisted"])
    assert after["wsgi"]["in_flight"] == 0
    assert after["wsgi"]["latency"]["count"] == after["wsgi"]["completed"]
