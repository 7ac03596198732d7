"""Faults over raw sockets: clients that vanish, crowds that leave, and stopping under load.

Client crowds run on one asyncio loop (``tests.hardening.crowd``), not threads. Nothing waits
for time to pass: each step polls what the server reports (``/stats``, ``/held``, the process
table) with a bound. Requests that must stay in flight are held by ``/hold`` until the server
gets SIGUSR1 (see ``tests.hardening.apps``), since after SIGTERM no new request can reach it.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.conftest import HybridProcess, hybrid_argv, running
from tests.hardening.conftest import MOUNTS, Server, serve
from tests.hardening.crowd import abandon_at_random, read_to_end, send_all
from tests.hardening.wire import connect, read_until_closed, reset
from tests.servers import wait_for

MiB = 1024 * 1024
#: Room for thousands of clients at once: no per-mount or connection cap, a deep listen backlog.
CROWDED = ("--listen", "tcp:0:interface=127.0.0.1:backlog=4096", "--max-in-flight", "none", "--max-connections", "none")


@pytest.fixture(scope="module")
def server(http: str) -> Iterator[Server]:
    # A header deadline longer than the leak check's patience: a connection's timer left behind
    # would still be pending when the module ends, and fail it.
    with serve(*CROWDED, "--disconnect-grace", "0.2", "--header-timeout", "60", http=http) as running_server:
        yield running_server


# -- clients that vanish ------------------------------------------------------------------


@pytest.mark.parametrize("side", ["a", "n"])
def test_client_reset_mid_upload(server: Server, side: str) -> None:
    """The native side spools this body to a temporary file: the reset must close it too."""
    with connect(server.port) as sock:
        sock.sendall(b"POST /%s/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (side.encode(), 20 * MiB))
        sock.sendall(b"u" * MiB)
        reset(sock)
    server.wait_until_settled()
    assert server.healthy()


@pytest.mark.parametrize("side", ["a", "n"])
def test_client_reset_mid_download(server: Server, side: str) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /%s/download?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (side.encode(), 200 * MiB))
        received = 0
        while received < MiB:
            received += len(sock.recv(65536))
        reset(sock)
    server.wait_until_settled()
    assert server.healthy()


def test_websockets_closed_or_dropped_leave_nothing_behind(server: Server) -> None:
    """An upgraded connection's HTTP timers go with the upgrade, not when they fire."""

    async def clients() -> None:
        for i in range(20):
            async with websockets.connect(server.url.replace("http", "ws", 1) + "/asgi/live") as ws:
                await ws.recv()
                if i % 2:
                    ws.transport.abort()

    asyncio.run(clients())
    server.wait_until_settled()
    assert server.healthy()


def test_app_that_hangs_is_cancelled_when_its_client_leaves(server: Server) -> None:
    with connect(server.port) as sock:
        sock.sendall(b"GET /a/hang HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: server.leak_figures()["tasks"] > server.baseline["tasks"], "the app task to run")
    server.wait_until_settled()  # cancelled after --disconnect-grace
    assert server.healthy()


# -- a crowd that leaves ------------------------------------------------------------------

BURST = 5000
SIDES = ("twisted", "asgi")


def _burst(server: Server, seed: int) -> None:
    """BURST clients hold delayed requests on both sides, then all leave at random moments."""
    before = server.stats()
    paths = [f"/{side}/delayed?delay=60" for side in SIDES for _ in range(BURST // 2)]

    async def crowd() -> None:
        clients = await send_all(server.port, paths)
        await asyncio.to_thread(
            wait_for,
            lambda: sum(server.stats()[side]["in_flight"] for side in SIDES) == BURST,
            f"{BURST} requests in flight",
            60.0,
        )
        await abandon_at_random(clients, random.Random(seed), within=0.5)

    asyncio.run(crowd())

    seen: list[dict[str, tuple[int, int]]] = []

    def all_abandoned() -> bool:
        now = server.stats()
        seen.append(
            {side: (now[side]["in_flight"], now[side]["abandoned"] - before[side]["abandoned"]) for side in SIDES}
        )
        return all(seen[-1][side] == (0, BURST // 2) for side in SIDES)

    try:
        wait_for(all_abandoned, f"all {BURST} requests counted as abandoned", 60.0)
    except AssertionError as e:
        raise AssertionError(f"{e}; (in flight, abandoned) per side: {seen[-1]}") from None
    server.wait_until_settled()  # every delayed call and task cancelled, every socket closed


def test_burst_of_clients_abandoning_at_random_leaves_nothing_behind(server: Server) -> None:
    _burst(server, seed=1)
    first = server.stats()["process"]["rss_bytes"]
    _burst(server, seed=2)
    second = server.stats()["process"]["rss_bytes"]
    # A leak of even a few hundred bytes per request would show here, twice the burst later.
    assert second - first < 16 * MiB, f"RSS grew from {first} to {second} bytes over a second burst"
    assert server.healthy()


# -- stopping under load ------------------------------------------------------------------

HELD = 1000


def _held(process: HybridProcess) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(process.url + "/a/held", timeout=10).json()
    return counts


def _refused(port: int) -> bool:
    try:
        connect(port).close()
    except ConnectionRefusedError:
        return True
    return False


def _port(process: HybridProcess) -> int:
    return int(process.url.rsplit(":", 1)[1])


def test_sigterm_drains_a_thousand_requests_then_runs_lifespan_shutdown_and_exits_0() -> None:
    with running(hybrid_argv(*MOUNTS, *CROWDED)) as process:

        async def scenario() -> list[bytes]:
            paths = [f"/{side}/hold" for side in ("a", "n") for _ in range(HELD // 2)]
            clients = await send_all(_port(process), paths, close=True)
            replies = [asyncio.ensure_future(read_to_end(client)) for client in clients]
            await asyncio.to_thread(
                wait_for, lambda: _held(process) == {"asgi": HELD // 2, "native": HELD // 2}, f"{HELD} held"
            )
            process.proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(wait_for, lambda: _refused(_port(process)), "the listener to close")
            # The listener closed while every request was still in flight, and the server waits.
            assert not any(reply.done() for reply in replies)
            assert process.proc.poll() is None
            process.proc.send_signal(signal.SIGUSR1)  # the held requests may answer now
            return await asyncio.gather(*replies)

        replies = asyncio.run(scenario())
        assert all(r.startswith(b"HTTP/1.1 200 OK") and r.endswith(b"released") for r in replies)
        assert process.proc.wait(timeout=60) == 0
        log = process.log()
        assert f"draining {HELD} requests in flight" in log
        assert log.index("Drained: no request in flight") < log.index("hardening app: lifespan shutdown complete")


def test_drain_deadline_cuts_off_what_is_left_and_still_exits_0() -> None:
    with running(hybrid_argv(*MOUNTS, "--drain-timeout", "0.5")) as process:
        held = _hold(process, 10)
        process.proc.send_signal(signal.SIGTERM)
        assert process.proc.wait(timeout=60) == 0
        replies = [read_until_closed(sock) for sock in held]
        for sock in held:
            sock.close()
        assert all(reply.closed and not reply.data for reply in replies)
        log = process.log()
        assert "Drain deadline (0.5 s) passed with 10 requests in flight" in log
        assert "hardening app: lifespan shutdown complete" in log


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_second_signal_exits_at_once(sig: signal.Signals, status: int) -> None:
    with running(hybrid_argv(*MOUNTS)) as process:  # the default drain deadline is 60 s
        held = _hold(process, 10)
        process.proc.send_signal(sig)
        wait_for(lambda: _refused(_port(process)), "the listener to close")
        process.proc.send_signal(sig)
        assert process.proc.wait(timeout=30) == status
        assert f"Second {sig.name} while stopping: exiting now (status {status}) with 10 requests" in process.log()
        for sock in held:
            sock.close()


def _hold(process: HybridProcess, n: int) -> list[socket.socket]:
    """``n`` requests held at ``/a/hold`` and ``/n/hold`` (half each), on raw sockets."""
    socks = []
    for i in range(n):
        sock = connect(_port(process))
        sock.sendall(b"GET /%s/hold HTTP/1.1\r\nHost: x\r\n\r\n" % (b"a" if i % 2 else b"n"))
        socks.append(sock)
    wait_for(lambda: sum(_held(process).values()) == n, f"{n} requests held")
    return socks
