"""Serve the hybrid site in this process, abandon requests on both sides, print what is left.

Run by ``test_abandon.py`` as a subprocess (the reactor runs once per process). It builds the
same service as ``hybrid serve`` (listening on a unix socket given as argv[1]), then, as an
asyncio client on the reactor's own loop, opens one request per endpoint with a 60 s delay,
waits until all are in flight, drops the connections, and waits until both sides count them
abandoned. It prints one JSON object: the asyncio tasks and reactor delayed calls that appeared
while the requests were pending, those of them still there after the clients left, and /stats.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from bridge import install_reactor

install_reactor()

from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402
from twisted.internet.interfaces import IDelayedCall  # noqa: E402

from app.options import ServeOptions  # noqa: E402
from app.serve import make_service  # noqa: E402

PATHS = [
    f"/{side}/{endpoint}?delay=60"
    for side, endpoints in (
        ("twisted", ("delayed", "stream", "await-asyncio")),
        ("asgi", ("delayed", "stream", "await-twisted")),
    )
    for endpoint in endpoints
]
DEADLINE = 20.0


async def get(socket_path: str, path: str) -> bytes:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(f"GET {path} HTTP/1.0\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data.partition(b"\r\n\r\n")[2]


async def stats(socket_path: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(await get(socket_path, "/stats"))
    return result


async def until(condition: Callable[[], Awaitable[bool]]) -> bool:
    """Poll ``condition`` until it holds (True) or the deadline passes (False)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not await condition():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.02)
    return True


def pending_tasks(baseline: set[asyncio.Task[Any]]) -> list[str]:
    return sorted(repr(task.get_coro()) for task in asyncio.all_tasks() - baseline)


def describe(calls: set[IDelayedCall]) -> list[str]:
    return sorted(repr(getattr(call, "func", call)) for call in calls)


async def probe(socket_path: str) -> dict[str, Any]:
    async def listening() -> bool:
        try:
            await get(socket_path, "/healthz")
        except OSError:
            return False
        return True

    if not await until(listening):
        raise RuntimeError("timed out waiting for the server to listen")
    baseline_tasks = asyncio.all_tasks()
    baseline_calls = set(reactor.getDelayedCalls())
    connections = []
    for path in PATHS:
        _, writer = await asyncio.open_unix_connection(socket_path)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
        connections.append(writer)

    async def all_in_flight() -> bool:
        counts = await stats(socket_path)
        return bool(counts["twisted"]["in_flight"] == 3 and counts["asgi"]["in_flight"] == 3)

    if not await until(all_in_flight):
        raise RuntimeError("timed out waiting for every request to be in flight")
    # Delayed calls that appeared while the requests were pending: the requests' own work, plus
    # whatever the server schedules per connection; none of them may stay active afterwards.
    during_calls = set(reactor.getDelayedCalls()) - baseline_calls
    during = {"tasks": pending_tasks(baseline_tasks), "delayed_calls": describe(during_calls)}
    for writer in connections:
        writer.transport.abort()

    async def all_abandoned() -> bool:
        counts = await stats(socket_path)
        return all(counts[side]["abandoned"] == 3 for side in ("twisted", "asgi"))

    if not await until(all_abandoned):
        raise RuntimeError("timed out waiting for every request to be counted abandoned")

    def still_active() -> set[IDelayedCall]:
        return {call for call in during_calls if call.active()}

    async def settled() -> bool:
        return not pending_tasks(baseline_tasks) and not still_active()

    # Cancellation is asynchronous on the asyncio side; give it a bounded while to land, then
    # report whatever is left for the test to judge.
    await until(settled)
    after = {"tasks": pending_tasks(baseline_tasks), "delayed_calls": describe(still_active())}
    return {"during": during, "after": after, "stats": await stats(socket_path)}


def main() -> None:
    socket_path = sys.argv[1]
    # No access log: this process prints its report on stdout, last.
    options = ServeOptions(listen=[f"unix:{socket_path}"], delay=5.0, mount=[], access_log=None)
    service = make_service(options, reactor, reactor.stop)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)

    def report(result: dict[str, Any]) -> None:
        print(json.dumps(result), flush=True)
        reactor.stop()

    def failed(reason: Any) -> None:
        print(json.dumps({"error": str(reason.value)}), flush=True)
        reactor.stop()

    running: list[asyncio.Task[dict[str, Any]]] = []

    def start() -> None:
        # Held: the loop keeps only a weak reference to a task, and a collected probe never reports.
        running.append(asyncio.ensure_future(probe(socket_path)))
        Deferred.fromFuture(running[0]).addCallbacks(report, failed)

    reactor.callWhenRunning(start)
    reactor.run()


if __name__ == "__main__":
    main()
