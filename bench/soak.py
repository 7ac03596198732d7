"""``make soak``: mixed traffic with random aborts against ``hybrid serve`` for a while; did anything grow?

Starts its own ``hybrid serve`` (or uses ``--url``), warms it up, lets it settle, records what a
leak would change first -- resident memory, open file descriptors, pending reactor delayed calls,
asyncio tasks, all from ``/stats`` -- then runs ``--concurrency`` clients for ``--duration``
seconds, each picking at random: complete requests to every side (delayed, streaming, the
site's own pages, WebSockets), the same requests abandoned at a random moment (FIN or reset),
uploads cut off half way, and malformed requests. After the traffic it lets the server settle
again and compares. The target: every figure flat, zero 5xx. The report (Markdown, also written
to ``--markdown``) carries the command and the machine. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.machine import describe

HERE = Path(__file__).resolve().parent
SIDES = ("twisted", "asgi", "wsgi")
FIGURES = ("rss_bytes", "open_fds", "delayed_calls", "tasks")
MiB = 1024 * 1024
#: RSS may move this much between two settled samples and still count as flat (allocator noise).
RSS_SLACK = 8 * MiB
MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\nHost: x\n\n",
    b"POST /asgi/delayed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


@dataclass
class Tally:
    """What the clients saw."""

    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def server_errors(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome.isdigit() and int(outcome) >= 500)


class Traffic:
    """One client's repertoire; each action records its outcome in the tally."""

    def __init__(self, url: str, client: httpx.AsyncClient, rng: random.Random, tally: Tally) -> None:
        self.url = url
        self.host, self.port = url.removeprefix("http://").split(":")[0], int(url.rsplit(":", 1)[1])
        self.client = client
        self.rng = rng
        self.tally = tally
        self.actions: list[tuple[int, Callable[[], Awaitable[None]]]] = [
            (30, self.complete),
            (8, self.page),
            (25, self.abandon),
            (6, self.cut_upload),
            (6, self.malformed),
            (5, self.websocket),
        ]

    async def run_one(self) -> None:
        weights, actions = zip(*self.actions, strict=True)
        action = self.rng.choices(actions, weights)[0]
        try:
            await asyncio.wait_for(action(), 30)
        except (OSError, httpx.TransportError, websockets.WebSocketException, TimeoutError) as e:
            self.tally.outcomes[f"error: {type(e).__name__}"] += 1

    def _tutorial_path(self, longest: float) -> str:
        side, endpoint = self.rng.choice(SIDES), self.rng.choice(("delayed", "stream"))
        return f"/{side}/{endpoint}?delay={self.rng.uniform(0, longest):.3f}"

    async def complete(self) -> None:
        response = await self.client.get(self.url + self._tutorial_path(0.3))
        self.tally.outcomes[str(response.status_code)] += 1

    async def page(self) -> None:
        response = await self.client.get(self.url + self.rng.choice(("/", "/stats", "/healthz")))
        self.tally.outcomes[str(response.status_code)] += 1

    async def _raw(self, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(data)
        await writer.drain()
        return reader, writer

    def _leave(self, writer: asyncio.StreamWriter) -> None:
        if self.rng.random() < 0.5:  # a reset, as a crashed client or a middlebox sends
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    async def abandon(self) -> None:
        path = self._tutorial_path(2.0)
        _, writer = await self._raw(b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path.encode())
        await asyncio.sleep(self.rng.uniform(0, 0.5))  # the client's patience, part of the traffic
        self._leave(writer)
        self.tally.outcomes["abandoned"] += 1

    async def cut_upload(self) -> None:
        side = self.rng.choice(("twisted", "asgi"))
        head = b"POST /%s/delayed HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % (side.encode(), 4 * MiB)
        _, writer = await self._raw(head + b"u" * self.rng.randrange(1, 256 * 1024))
        self._leave(writer)
        self.tally.outcomes["upload cut off"] += 1

    async def malformed(self) -> None:
        reader, writer = await self._raw(self.rng.choice(MALFORMED))
        reply = await reader.read()
        writer.close()
        status = reply.split(b" ", 2)[1].decode() if reply.startswith(b"HTTP/1.1 ") else "closed"
        self.tally.outcomes[f"malformed: {status}"] += 1  # 400 or 505 is the right answer here

    async def websocket(self) -> None:
        async with websockets.connect(self.url.replace("http", "ws", 1) + "/asgi/live") as ws:
            for _ in range(self.rng.randint(1, 2)):
                await ws.recv()
            if self.rng.random() < 0.5:
                ws.transport.abort()
                self.tally.outcomes["websocket dropped"] += 1
                return
        self.tally.outcomes["websocket closed"] += 1


async def _figures(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    stats = (await client.get(url + "/stats")).json()
    figures = {name: stats["process"][name] for name in FIGURES}
    return {**figures, "in_flight": sum(stats[side]["in_flight"] for side in SIDES)}


async def _settled(client: httpx.AsyncClient, url: str, bound: float = 60.0) -> dict[str, Any]:
    """Figures once nothing is in flight and two samples a second apart agree (or after ``bound`` s)."""
    end = time.monotonic() + bound
    previous = await _figures(client, url)
    while time.monotonic() < end:
        await asyncio.sleep(1.0)
        now = await _figures(client, url)
        steady = all(now[name] == previous[name] for name in ("open_fds", "delayed_calls", "tasks"))
        if now["in_flight"] == 0 and steady:
            return now
        previous = now
    return previous


async def _traffic(url: str, seconds: float, concurrency: int, rng: random.Random, tally: Tally) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        end = time.monotonic() + seconds

        async def worker(seed: int) -> None:
            traffic = Traffic(url, client, random.Random(seed), tally)
            while time.monotonic() < end:
                await traffic.run_one()

        await asyncio.gather(*(worker(rng.randrange(2**32)) for _ in range(concurrency)))


async def soak(url: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    samples: list[tuple[float, dict[str, Any]]] = []
    async with httpx.AsyncClient(timeout=30) as probe:
        idle = await _settled(probe, url)
        warm = Tally()
        await _traffic(url, args.warmup, args.concurrency, rng, warm)
        start = await _settled(probe, url)
        tally = Tally()
        began = time.monotonic()
        traffic = asyncio.ensure_future(_traffic(url, args.duration, args.concurrency, rng, tally))
        while not traffic.done():
            samples.append((time.monotonic() - began, await _figures(probe, url)))
            await asyncio.wait([traffic], timeout=args.sample_every)
        await traffic
        end = await _settled(probe, url)
    return {"idle": idle, "start": start, "end": end, "samples": samples, "tally": tally, "warmup": warm}


def _flat(start: dict[str, Any], end: dict[str, Any]) -> dict[str, bool]:
    verdict = {name: end[name] <= start[name] for name in ("open_fds", "delayed_calls", "tasks")}
    verdict["rss_bytes"] = end["rss_bytes"] - start["rss_bytes"] <= RSS_SLACK
    return verdict


def _mib(n: int) -> str:
    return f"{n / MiB:.1f} MiB"


def report(result: dict[str, Any], args: argparse.Namespace, command: str, machine: list[tuple[str, str]]) -> str:
    idle, start, end, tally = result["idle"], result["start"], result["end"], result["tally"]
    flat = _flat(start, end)
    shown: dict[str, Callable[[int], str]] = {"rss_bytes": _mib, "open_fds": str, "delayed_calls": str, "tasks": str}
    names = {"rss_bytes": "RSS", "open_fds": "open fds", "delayed_calls": "delayed calls", "tasks": "asyncio tasks"}
    lines = [
        "# Soak: mixed traffic with random aborts",
        "",
        f"Command: `{command}` ({args.concurrency} concurrent clients, {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured, seed {args.seed}).",
        "",
        "Each figure is read from `/stats` with nothing in flight: before any traffic (idle), after the "
        "warm-up (start), after the measured traffic (end). Target: every figure flat from start to end "
        f"(RSS within {_mib(RSS_SLACK)}), zero 5xx.",
        "",
        "| figure | idle | start | end | end - start | flat |",
        "|---|---|---|---|---|---|",
    ]
    for name in FIGURES:
        delta = end[name] - start[name]
        fmt = shown[name]
        signed = ("+" if delta >= 0 else "-") + fmt(abs(delta))
        cells = [names[name], fmt(idle[name]), fmt(start[name]), fmt(end[name]), signed, "yes" if flat[name] else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    total = sum(tally.outcomes.values())
    lines += [
        "",
        f"**5xx responses: {tally.server_errors}** of {total} client actions ({total / args.duration:.0f} per second).",
        "",
        "| outcome | count |",
        "|---|---|",
        *(f"| {outcome} | {n} |" for outcome, n in sorted(tally.outcomes.items())),
        "",
        f"During the measured traffic, every {args.sample_every:g} s (requests in flight at that moment):",
        "",
        "| t (s) | RSS | open fds | delayed calls | tasks | in flight |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t:.0f} | {_mib(s['rss_bytes'])} | {s['open_fds']} | {s['delayed_calls']} | {s['tasks']} "
            f"| {s['in_flight']} |"
            for t, s in result["samples"]
        ),
        "",
        "Machine:",
        "",
        *(f"- {key}: {value}" for key, value in machine if key not in ("Cores", "wrk")),
        f"- Cores: {os.cpu_count()} (server and clients unpinned, on the same machine)",
        "",
    ]
    return "\n".join(lines)


def _start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    argv = [sys.executable, "-m", "app", "serve", "--listen", "tcp:0:interface=127.0.0.1:backlog=1024"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=HERE.parent)
    end = time.monotonic() + 60
    while time.monotonic() < end and server.poll() is None:
        match = re.search(r"hybrid serving on (http://\S+)", log.read_text(errors="replace"))
        if match:
            return server, match.group(1)
        time.sleep(0.1)
    server.kill()
    raise SystemExit(f"hybrid serve did not start; see {log}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds (default 180)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of traffic before the start figures")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent clients (default 200)")
    parser.add_argument("--sample-every", type=float, default=15.0, help="seconds between samples during the run")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--url", help="soak a server that is already running instead of starting one")
    parser.add_argument("--markdown", type=Path, help="also write the report here (e.g. bench/SOAK.md)")
    args = parser.parse_args()
    command = "python -m bench.soak " + " ".join(sys.argv[1:])
    machine = describe()  # before the run: the commit it measures
    server = None
    url = args.url
    if url is None:
        server, url = _start_server(HERE / "work" / "soak-server.log")
    try:
        result = asyncio.run(soak(url, args))
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                server.kill()
    text = report(result, args, command, machine)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0 if result["tally"].server_errors == 0 and all(_flat(result["start"], result["end"]).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
