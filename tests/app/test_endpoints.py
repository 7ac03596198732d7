"""The hybrid site's URLs over real sockets: every endpoint of both sides, validation, /stats."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from app.tutorial import BODY, stream_parts
from tests.conftest import HybridProcess, hybrid_argv, running
from tests.servers import wait_for

SIDES = ("twisted", "asgi")
INTEROP = {"twisted": "await-asyncio", "asgi": "await-twisted"}
BAD_DELAYS = [
    "abc",
    "-1",
    "60.5",
    "nan",
    "inf",
    "1e1",
    "",
    "%201",
    "1_0",
    "0x10",
    "%C3%A9",
]


@pytest.fixture(scope="module", params=["twisted", "hypercorn"])
def server(request: pytest.FixtureRequest) -> Iterator[HybridProcess]:
    """The site behind each front: Twisted's Site, and Hypercorn (``bridge.TwistedResourceApp``)."""
    with running(hybrid_argv("--server", request.param)) as server:
        yield server


def stats(server: HybridProcess) -> dict[str, dict[str, object]]:
    response = httpx.get(f"{server.url}/stats")
    assert response.headers["content-type"] == "application/json"
    result: dict[str, dict[str, object]] = response.json()
    return result


def test_index_links_every_endpoint(server: HybridProcess) -> None:
    """The index explains both sides and links each of their endpoints, /stats and /healthz."""
    response = httpx.get(f"{server.url}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for side in SIDES:
        for endpoint in ("delayed", "stream", INTEROP[side]):
            assert f'href="{side}/{endpoint}?delay=' in response.text
    assert 'href="stats"' in response.text
    assert 'href="healthz"' in response.text


def test_healthz(server: HybridProcess) -> None:
    response = httpx.get(f"{server.url}/healthz")
    assert (response.status_code, response.text) == (200, "ok")


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("endpoint", ["delayed", "interop"])
def test_delayed_body_is_the_tutorials(server: HybridProcess, side: str, endpoint: str) -> None:
    """The delayed endpoints (and their cross-loop variants) answer with the tutorial's body."""
    path = INTEROP[side] if endpoint == "interop" else endpoint
    response = httpx.get(f"{server.url}/{side}/{path}?delay=0.01")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == BODY


@pytest.mark.parametrize("side", SIDES)
def test_stream_arrives_progressively(server: HybridProcess, side: str) -> None:
    """The opening chunk arrives while the response is still in flight; the client then leaves."""
    before = stats(server)[side]
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{server.url}/{side}/stream?delay=60") as response,
    ):
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = response.iter_raw()  # held: dropping the iterator would close the response
        assert next(chunks) == stream_parts()[0]
        assert stats(server)[side]["in_flight"] == 1
    wait_for(lambda: stats(server)[side]["abandoned"] == before["abandoned"] + 1, "abandonment")  # type: ignore[operator]


@pytest.mark.parametrize("side", SIDES)
def test_stream_body_is_complete(server: HybridProcess, side: str) -> None:
    response = httpx.get(f"{server.url}/{side}/stream?delay=0.05")
    assert response.status_code == 200
    assert response.content == b"".join(stream_parts())


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("endpoint", ["delayed", "stream", "interop"])
@pytest.mark.parametrize("delay", BAD_DELAYS)
def test_bad_delay_is_a_400(
    request: pytest.FixtureRequest, server: HybridProcess, side: str, endpoint: str, delay: str
) -> None:
    """Anything but a plain number of seconds in 0..60 gets a one-line plain-text 400."""
    path = INTEROP[side] if endpoint == "interop" else endpoint
    response = httpx.get(f"{server.url}/{side}/{path}?delay={delay}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "delay must be a number of seconds between 0 and 60\n"


@pytest.mark.parametrize("side", SIDES)
def test_repeated_delay_is_a_400(server: HybridProcess, side: str) -> None:
    response = httpx.get(f"{server.url}/{side}/delayed?delay=1&delay=2")
    assert (response.status_code, response.text) == (400, "delay must be given at most once\n")


def test_stats_shape(server: HybridProcess) -> None:
    """/stats has exactly the documented keys for each side."""
    for side in SIDES:
        httpx.get(f"{server.url}/{side}/delayed?delay=0")
    result = stats(server)
    assert list(result) == [*SIDES, "wsgi", "process"]  # /wsgi: tests/app/test_wsgi*.py
    assert set(result["process"]) == {"pid", "cpu_seconds", "rss_bytes", "open_fds", "tasks", "delayed_calls"}
    for side in SIDES:
        assert set(result[side]) == {"in_flight", "peak_in_flight", "completed", "abandoned", "latency"}
        latency = result[side]["latency"]
        assert isinstance(latency, dict)
        assert set(latency) == {"count", "mean", "p50", "p90", "p99", "max"}
        assert latency["count"] == result[side]["completed"]


def test_post_stats_starts_a_new_peak_window(server: HybridProcess) -> None:
    """POST /stats sets each side's peak in flight to what is in flight now, and answers the counters."""
    with httpx.Client() as client:
        for side in SIDES:
            client.get(f"{server.url}/{side}/delayed?delay=0")
        # The response leaves at send(); the endpoint's own bookkeeping may finish a loop turn later.
        wait_for(lambda: all(client.get(f"{server.url}/stats").json()[s]["in_flight"] == 0 for s in SIDES), "idle")
        response = client.post(f"{server.url}/stats")
    assert response.status_code == 200
    assert [response.json()[side]["peak_in_flight"] for side in SIDES] == [0, 0]


def test_unknown_path_is_a_404(server: HybridProcess) -> None:
    assert httpx.get(f"{server.url}/nowhere").status_code == 404
    assert httpx.get(f"{server.url}/asgi/nowhere").status_code == 404


def test_raw_http_10_client(server: HybridProcess) -> None:
    """A bare HTTP/1.0 client gets the whole body, closed by the server (no chunking)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /asgi/stream?delay=0 HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert body == b"".join(stream_parts())


@pytest.mark.parametrize("side", [*SIDES, "wsgi"])
def test_head_of_a_stream_ends_with_its_headers(server: HybridProcess, side: str) -> None:
    """HEAD of a 60-s stream answers its headers and ends: the same keep-alive connection serves
    the next request at once, and the HEAD counts as completed, not abandoned."""
    before = stats(server)[side]
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1)) as client:
        head = client.head(f"{server.url}/{side}/stream?delay=60")
        assert (head.status_code, head.headers["content-type"], head.content) == (200, "text/html; charset=utf-8", b"")
        # The response leaves at send(); the endpoint counts it a loop turn or two later.
        wait_for(lambda: client.get(f"{server.url}/stats").json()[side]["in_flight"] == 0, "the HEAD to be counted")
        after = client.get(f"{server.url}/stats").json()[side]
    assert after["completed"] == before["completed"] + 1  # type: ignore[operator]
    assert (after["abandoned"], after["in_flight"]) == (before["abandoned"], 0)


@pytest.mark.parametrize("side", [*SIDES, "wsgi"])
@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_other_methods_are_a_405_on_every_side(server: HybridProcess, side: str, method: str) -> None:
    """Every side answers a method it does not serve alike: 405, ``Allow`` GET and HEAD, plain text."""
    response = httpx.request(method, f"{server.url}/{side}/delayed")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "HEAD"}  # Starlette: either order
    assert (response.headers["content-type"], response.text) == ("text/plain; charset=utf-8", "Method Not Allowed")


def test_warm_up_requests_are_served_but_left_out_of_stats(server: HybridProcess) -> None:
    """``?warmup=1`` (the dashboard's and `hybrid compare`'s unmeasured round) counts in no run, on every side."""
    sides = ("twisted", "asgi", "wsgi")
    with httpx.Client() as client:

        def completed() -> list[int]:
            snapshot = client.get(f"{server.url}/stats").json()
            return [snapshot[side]["completed"] + snapshot[side]["abandoned"] for side in sides]

        before = completed()
        for side in sides:
            response = client.get(f"{server.url}/{side}/delayed?delay=0&warmup=1")
            assert (response.status_code, response.content) == (200, BODY)
        for side in sides:
            client.get(f"{server.url}/{side}/delayed?delay=0")
        wait_for(lambda: completed() == [n + 1 for n in before], "the three measured requests to be counted")
        assert completed() == [n + 1 for n in before]
