"""Prometheus metrics at /metrics, scraped from real servers and read with the library's own parser."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conftest import HybridProcess
from tests.servers import wait_for

FRONTS = ("twisted", "hypercorn")
MOUNTABLES = "tests.app.mountables"

Start = Callable[..., HybridProcess]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, path: str = "/metrics") -> Samples:
    response = httpx.get(f"{url}{path}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.parametrize("front", FRONTS)
def test_requests_by_side_and_status_class_with_latency(hybrid_server: Start, front: str) -> None:
    server = hybrid_server("--server", front)
    with httpx.Client() as client:
        for side in ("twisted", "asgi", "wsgi"):
            assert client.get(f"{server.url}/{side}/delayed?delay=0").status_code == 200
            assert client.get(f"{server.url}/{side}/delayed?delay=x").status_code == 400
    samples = scrape(server.url)
    for side in ("twisted", "asgi", "wsgi"):
        assert value(samples, "hybrid_requests_total", side=side, status_class="2xx") == 1
        assert value(samples, "hybrid_requests_total", side=side, status_class="4xx") == 1
        assert value(samples, "hybrid_request_duration_seconds_count", side=side) == 2
        assert value(samples, "hybrid_request_duration_seconds_bucket", side=side, le="+Inf") == 2
    assert value(samples, "hybrid_requests_in_flight", side="site") == 1  # the scrape itself
    assert value(samples, "hybrid_reactor_delayed_calls") >= 1  # the access log's flush, at least
    assert value(samples, "hybrid_asyncio_tasks") >= 1


@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize("side", ["twisted", "asgi"])
def test_in_flight_then_abandoned(hybrid_server: Start, front: str, side: str) -> None:
    server = hybrid_server("--server", front)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /{side}/delayed?delay=60 HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_for(lambda: value(scrape(server.url), "hybrid_requests_in_flight", side=side) == 1, "in flight")
    wait_for(lambda: value(scrape(server.url), "hybrid_requests_abandoned_total", side=side) == 1, "abandoned")
    samples = scrape(server.url)
    assert value(samples, "hybrid_requests_in_flight", side=side) == 0
    assert value(samples, "hybrid_requests_total", side=side, status_class="2xx") == 0


def test_refusals_by_status(hybrid_server: Start) -> None:
    """503 beyond --max-in-flight and 413 beyond --max-body-size are counted as refused, per side."""
    server = hybrid_server("--max-in-flight", "1", "--max-body-size", "1K")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /twisted/delayed?delay=60 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_for(lambda: value(scrape(server.url), "hybrid_requests_in_flight", side="twisted") == 1, "in flight")
        assert httpx.get(f"{server.url}/twisted/delayed?delay=0").status_code == 503
    assert httpx.post(f"{server.url}/asgi/delayed", content=b"x" * 4096).status_code == 413
    samples = scrape(server.url)
    assert value(samples, "hybrid_requests_refused_total", side="twisted", status="503") == 1
    assert value(samples, "hybrid_requests_refused_total", side="asgi", status="413") == 1


@pytest.mark.parametrize("front", FRONTS)
def test_websockets_open_and_messages_each_way(hybrid_server: Start, front: str) -> None:
    server = hybrid_server("--server", front)
    with connect(server.url.replace("http://", "ws://") + "/asgi/live") as ws:
        ws.recv(timeout=10)
        ws.send("hello")
        samples = scrape(server.url)
        assert value(samples, "hybrid_websockets_open", side="asgi") == 1
        assert value(samples, "hybrid_websocket_messages_total", side="asgi", direction="out") >= 1
        wait_for(
            lambda: value(scrape(server.url), "hybrid_websocket_messages_total", side="asgi", direction="in") == 1,
            "the message from the client to be counted",
        )
    wait_for(lambda: value(scrape(server.url), "hybrid_websockets_open", side="asgi") == 0, "the close")
    assert value(scrape(server.url), "hybrid_requests_total", side="asgi", status_class="1xx") == 1  # its 101


def test_metrics_path_and_no_metrics(hybrid_server: Start) -> None:
    moved = hybrid_server("--metrics", "/ops/metrics")
    assert value(scrape(moved.url, "/ops/metrics"), "hybrid_requests_in_flight", side="site") == 1
    assert httpx.get(f"{moved.url}/metrics").status_code == 404
    off = hybrid_server("--no-metrics")
    assert httpx.get(f"{off.url}/metrics").status_code == 404


def test_metrics_beside_a_mount_at_the_root(hybrid_server: Start) -> None:
    """--mount /=app replaces the site; /metrics is still served, and the app's requests are labelled "/"."""
    server = hybrid_server("--mount", f"/={MOUNTABLES}:asgi_app")
    before = value(scrape(server.url), "hybrid_requests_total", side="/", status_class="2xx")  # /healthz at start
    assert httpx.get(f"{server.url}/anything").json()["path"] == "/anything"
    samples = scrape(server.url)
    assert value(samples, "hybrid_requests_total", side="/", status_class="2xx") == before + 1
    assert value(samples, "hybrid_requests_total", side="site", status_class="2xx") == 1  # the first scrape


def test_bad_metrics_path_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--metrics", "metrics"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "argument --metrics: 'metrics' is not a path like /metrics" in result.stderr


def test_workers_expose_the_whole_pool(hybrid_server: Start) -> None:
    """Under --workers 2 a scrape has every worker's series, labelled by worker; they add up to the pool's."""
    server = hybrid_server("--workers", "2")
    for _ in range(6):  # a new connection each: the kernel spreads them over the workers
        assert httpx.get(f"{server.url}/twisted/delayed?delay=0").status_code == 200

    def both_workers() -> bool:
        samples = scrape(server.url)
        return all(value(samples, "hybrid_reactor_delayed_calls", worker=w) >= 1 for w in ("1", "2"))

    wait_for(both_workers, "both workers' series in one scrape")
    samples = scrape(server.url)
    served = [
        value(samples, "hybrid_requests_total", side="twisted", status_class="2xx", worker=w) for w in ("1", "2")
    ]
    assert sum(served) == 6


def test_connections_beyond_the_limit_are_refusals(hybrid_server: Start) -> None:
    """--max-connections 2: with two connections open, a third gets 503 and counts as refused under side=site."""
    server = hybrid_server("--max-connections", "2")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10), socket.create_connection((host, int(port))):
        wait_for(lambda: _refused_third(host, int(port)), "a third connection to be refused")
    wait_for(lambda: httpx.get(f"{server.url}/healthz").status_code == 200, "the two connections to be closed")
    assert value(scrape(server.url), "hybrid_requests_refused_total", side="site", status="503") == 1


def _refused_third(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=10) as third:
        third.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        return third.recv(100).startswith(b"HTTP/1.1 503")


def test_requests_the_channel_refuses_itself_are_counted_under_side_site(hybrid_server: Start) -> None:
    """431 for oversized headers and 400 for a malformed chunk never reach a side: the channel counts them."""
    server = hybrid_server("--max-header-bytes", "1024")
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    for request in (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
        b"POST /asgi/delayed HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(request)
            while sock.recv(65536):
                pass
    samples = scrape(server.url)
    assert value(samples, "hybrid_requests_refused_total", side="site", status="431") == 1
    assert value(samples, "hybrid_requests_refused_total", side="site", status="400") == 1
