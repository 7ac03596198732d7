"""What the thread model does and cannot do, seen through the server's own /stats.

- Concurrency is the pool size: more requests than threads never have more than pool-size in
  flight, and raising ``--wsgi-threads`` above the request count lets them all wait at once.
- A client that leaves cannot interrupt a sleeping thread: the request stays in flight until the
  sleep ends, then counts as abandoned. A stream stops at its next chunk.
- Stopping the server waits for running requests instead of hanging.

No wall-clock assertion: the delays only have to outlast the time it takes to send a handful of
requests.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app.tutorial import BODY, stream_parts
from tests.conftest import HybridProcess
from tests.servers import wait_for

Start = Callable[..., HybridProcess]
#: Long enough for every request of a test to be sent while the first ones still sleep.
DELAY = 0.5


async def _fire(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        return await asyncio.gather(*(client.get(f"/wsgi/delayed?delay={DELAY}") for _ in range(count)))


def wsgi_stats(server: HybridProcess) -> dict[str, int]:
    result: dict[str, int] = httpx.get(f"{server.url}/stats").json()["wsgi"]
    return result


@pytest.mark.parametrize(
    ("threads", "requests", "peak"),
    [
        pytest.param(["--wsgi-threads", "3"], 7, 3, id="more-requests-than-threads"),
        pytest.param(["--wsgi-threads", "12"], 10, 10, id="more-threads-than-requests"),
        pytest.param([], 12, 10, id="twisted-default-pool-of-10"),
        pytest.param(["--server", "hypercorn", "--wsgi-threads", "3"], 7, 3, id="under-hypercorn"),
    ],
)
def test_peak_in_flight_is_the_pool_size(hybrid_server: Start, threads: list[str], requests: int, peak: int) -> None:
    server = hybrid_server(*threads)
    responses = asyncio.run(_fire(server.url, requests))
    assert [(r.status_code, r.content) for r in responses] == [(200, BODY)] * requests
    wait_for(lambda: wsgi_stats(server)["completed"] == requests, "every completion to be counted")
    stats = wsgi_stats(server)
    assert (stats["peak_in_flight"], stats["in_flight"], stats["abandoned"]) == (peak, 0, 0)


def test_abandoned_delayed_request_sleeps_on(hybrid_server: Start) -> None:
    """The client leaves; the thread cannot be told, so the request is in flight until its sleep ends."""
    server = hybrid_server()
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /wsgi/delayed?delay=2 HTTP/1.1\r\nHost: test\r\n\r\n")
        wait_for(lambda: wsgi_stats(server)["in_flight"] == 1, "the request to reach its thread")
    stats = wsgi_stats(server)
    assert (stats["in_flight"], stats["abandoned"]) == (1, 0)  # the client has gone, the thread sleeps on
    wait_for(lambda: wsgi_stats(server)["abandoned"] == 1, "the thread to wake up and find the client gone")
    stats = wsgi_stats(server)
    assert (stats["in_flight"], stats["completed"]) == (0, 0)


def test_abandoned_stream_stops_at_its_next_chunk(hybrid_server: Start) -> None:
    """A stream whose client left is closed at its next chunk and frees its (only) thread."""
    server = hybrid_server("--wsgi-threads", "1")
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", f"{server.url}/wsgi/stream?delay=1") as response,
    ):
        chunks = response.iter_raw()  # held: dropping the iterator would close the response
        assert next(chunks) == stream_parts()[0]
        assert wsgi_stats(server)["in_flight"] == 1
    wait_for(lambda: wsgi_stats(server)["abandoned"] == 1, "the stream to notice its client left")
    assert httpx.get(f"{server.url}/wsgi/delayed?delay=0").content == BODY
    wait_for(lambda: wsgi_stats(server)["completed"] == 1, "the next request to be counted")
    assert wsgi_stats(server)["abandoned"] == 1


def test_stop_waits_for_running_requests(hybrid_server: Start) -> None:
    """SIGTERM while a thread sleeps: its client still gets the body, and the server exits 0.

    Without ``app.thread_pool.DrainThreadPool`` the reactor would join its pool while the
    request waits for the reactor to write its response, and the process would hang.
    """
    server = hybrid_server()
    with ThreadPoolExecutor(1) as executor:
        pending = executor.submit(httpx.get, f"{server.url}/wsgi/delayed?delay=1", timeout=30)
        wait_for(lambda: wsgi_stats(server)["in_flight"] == 1, "the request to reach its thread")
        assert server.stop(signal.SIGTERM) == 0
        response = pending.result()
    assert (response.status_code, response.content) == (200, BODY)
