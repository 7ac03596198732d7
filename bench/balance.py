"""How evenly do two worker processes share one port: an inherited socket or SO_REUSEPORT?

``hybrid serve --workers N`` could share its port in two ways:

- *shared*: the supervisor binds once and every worker adopts the same listening socket
  (Twisted's ``adoptStreamPort``); all workers wait on one accept queue.
- *reuseport*: every worker binds its own socket with ``SO_REUSEPORT``; the kernel hashes each
  new connection to one of the sockets, whatever that worker is doing.

This script measures both with a minimal Twisted worker on the asyncio reactor (the reactor
``hybrid serve`` runs) and wrk as the load, once with keep-alive connections and once with a new
connection per request, and prints each worker's share of connections and requests::

    .venv/bin/python bench/balance.py [--duration 5] [--connections 64]

Each worker counts what it accepted and served, and prints the counts when it gets SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

WORKERS = 2


def _worker(fd: int | None, port: int, name: str) -> None:
    """One worker: count connections and requests until SIGTERM, then print the counts."""
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    from twisted.internet import reactor
    from twisted.web import resource, server

    counts: dict[str, Any] = {"worker": name, "connections": 0, "requests": 0}

    class Hello(resource.Resource):
        isLeaf = True

        def render_GET(self, request: server.Request) -> bytes:
            counts["requests"] += 1
            request.setHeader(b"content-type", b"text/plain")
            return b"Hello world!"

    class CountingSite(server.Site):
        def buildProtocol(self, addr: Any) -> Any:
            counts["connections"] += 1
            return super().buildProtocol(addr)

    site = CountingSite(Hello())
    site.noisy = False
    if fd is not None:
        reactor.adoptStreamPort(fd, socket.AF_INET, site)  # type: ignore[attr-defined]
        os.close(fd)  # the reactor holds its own duplicate
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        sock.setblocking(False)
        reactor.adoptStreamPort(sock.fileno(), socket.AF_INET, site)  # type: ignore[attr-defined]
        sock.close()

    # Twisted's own SIGTERM handler stops the reactor; the counts go out on the way down.
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: print(json.dumps(counts), flush=True)
    )
    print("ready", flush=True)
    reactor.run()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_workers(mode: str) -> tuple[int, list[subprocess.Popen[str]]]:
    listener: socket.socket | None = None
    if mode == "shared":
        listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        listener.setblocking(False)  # adoptStreamPort requires it; shared by every worker
        port = listener.getsockname()[1]
    else:
        port = _free_port()
    procs = []
    for i in range(WORKERS):
        args = [sys.executable, __file__, "--worker", str(i + 1), "--port", str(port)]
        pass_fds: tuple[int, ...] = ()
        if listener is not None:
            args += ["--fd", str(listener.fileno())]
            pass_fds = (listener.fileno(),)
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, pass_fds=pass_fds)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker {i + 1} did not start")
        procs.append(proc)
    if listener is not None:
        listener.close()
    return port, procs


def _stop_workers(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    results = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def measure(mode: str, keep_alive: bool, duration: float, connections: int) -> dict[str, Any]:
    """Run wrk against two workers sharing a port in ``mode``; return the counts and req/s."""
    port, procs = _start_workers(mode)
    try:
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s"]
        if not keep_alive:
            cmd += ["-H", "Connection: close"]
        out = subprocess.run(
            [*cmd, f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 30,
        ).stdout
    finally:
        counts = _stop_workers(procs)
    rate = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
    return {"mode": mode, "keep_alive": keep_alive, "workers": counts, "req_per_s": float(rate)}


def _share(counts: list[dict[str, Any]], key: str) -> str:
    total = sum(c[key] for c in counts) or 1
    return " / ".join(f"{100 * c[key] / total:.0f}%" for c in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.fd, args.port, args.worker)
        return
    print(f"{'mode':10} {'connections':12} {'conn. share':>14} {'req. share':>14} {'req/s':>9}")
    for _ in range(args.rounds):
        for keep_alive in (True, False):
            for mode in ("shared", "reuseport"):
                r = measure(mode, keep_alive, args.duration, args.connections)
                kind = "keep-alive" if keep_alive else "per request"
                print(
                    f"{mode:10} {kind:12} {_share(r['workers'], 'connections'):>14} "
                    f"{_share(r['workers'], 'requests'):>14} {r['req_per_s']:>9.0f}",
                    flush=True,
                )
                time.sleep(0.5)  # let TIME_WAIT sockets of the last run settle


if __name__ == "__main__":
    main()
