"""Body size, in-flight and response-time limits of ASGIResource, over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, raw_exchange, run_server, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with run_server([str(HERE / "limits_server.py")]) as running:
        yield running


def test_body_within_limit_is_read(server: RunningServer) -> None:
    r = httpx.post(server.url + "/limited/x", content=b"a" * 1000)
    assert (r.status_code, r.text) == (200, "1000")


def test_declared_oversize_body_gets_413_without_100_continue(server: RunningServer) -> None:
    reply = raw_exchange(
        server.port,
        b"POST /limited/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in reply
    assert reply.endswith(b"Request Entity Too Large\n")


def test_chunked_oversize_body_gets_413_and_close(server: RunningServer) -> None:
    chunk = b"%x\r\n%s\r\n" % (600, b"b" * 600)
    reply = raw_exchange(
        server.port,
        b"POST /limited/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk,
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in reply.lower()


def test_in_flight_limit_answers_503_with_retry_after(server: RunningServer) -> None:
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(httpx.post, server.url + "/limited/wait", content=b"xy", timeout=20) for _ in range(2)]
        wait_for(lambda: httpx.get(server.url + "/control/count").text == "2", "two requests held in the app")
        refused = httpx.get(server.url + "/limited/x")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        httpx.get(server.url + "/control/release")
        assert [(f.result().status_code, f.result().text) for f in held] == [(200, "2"), (200, "2")]
    assert httpx.get(server.url + "/limited/x").status_code == 200


def test_response_timeout_gives_504_and_server_keeps_serving(server: RunningServer) -> None:
    r = httpx.get(server.url + "/slow/x", timeout=10)
    assert r.status_code == 504
    assert r.text == "Gateway Timeout\n"
    assert "Answering GET /slow/x with 504" in server.log()
    assert httpx.get(server.url + "/limited/x").status_code == 200


@pytest.fixture(scope="module")
def plain_server() -> Iterator[RunningServer]:
    """The same tree under Twisted's own Site, which buffers bodies before rendering."""
    with run_server([str(HERE / "limits_server.py"), "plain"]) as running:
        yield running


def test_plain_site_delivers_buffered_bodies(plain_server: RunningServer) -> None:
    r = httpx.post(plain_server.url + "/limited/x", content=b"a" * 1000)
    assert (r.status_code, r.text) == (200, "1000")


def test_plain_site_refuses_an_oversize_chunked_body(plain_server: RunningServer) -> None:
    """No Content-Length to check up front: the size Twisted buffered is checked instead."""
    chunk = b"%x\r\n%s\r\n" % (600, b"b" * 600)
    reply = raw_exchange(
        plain_server.port,
        b"POST /limited/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + b"0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
