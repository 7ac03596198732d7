"""The servers under test: how each is started, and which workloads each one runs.

Every server listens on 127.0.0.1 with a backlog of 1024 where it can be set, with access logs
off, one process (Hypercorn with ``-w 0`` so it does not fork a worker), the stock settings
otherwise. Rows that need code that is not importable yet (the bridge, the reverse adapter) are
reported as missing with the import error rather than silently dropped.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

APPS = "bench.servers.apps"
PY = sys.executable


@dataclass(frozen=True)
class Server:
    name: str
    description: str
    argv: Callable[[object], list[str]]
    needs: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Why this server cannot run now (an import error), or None.

        Checked in a child interpreter: importing a server here could install a reactor.
        """
        for module in self.needs:
            check = subprocess.run([PY, "-c", f"import {module}"], capture_output=True, text=True, timeout=60)
            if check.returncode:
                lines = check.stderr.strip().splitlines() or ["(no message)"]
                return f"`import {module}` failed: {lines[-1]}"
        return None


def _native(reactor: str, http: str | None = None) -> Callable[[object], list[str]]:
    parser = ["--http", http] if http else []
    return lambda port: [PY, "-m", "bench.servers.twisted_native", "--reactor", reactor, *parser, "--port", str(port)]


def _bridge(app: str, reactor: str, http: str | None = None) -> Callable[[object], list[str]]:
    parser = ["--http", http] if http else []
    return lambda port: [
        PY,
        "-m",
        "bench.servers.bridge_site",
        "--app",
        app,
        "--reactor",
        reactor,
        *parser,
        "--port",
        str(port),
    ]


def _hybrid(app: str) -> Callable[[object], list[str]]:
    """``hybrid serve`` with its defaults, the app mounted at the root: what users run."""
    return lambda port: [
        PY,
        "-m",
        "app",
        "serve",
        "--listen",
        f"tcp:{port}:interface=127.0.0.1:backlog=1024",
        "--mount",
        f"/={APPS}:{app}_app",
    ]


def _daphne(app: str) -> Callable[[object], list[str]]:
    return lambda port: [
        PY,
        "-m",
        "daphne",
        "-v",
        "0",
        "-e",
        f"tcp:port={port}:interface=127.0.0.1:backlog=1024",
        f"{APPS}:{app}_app",
    ]


def _hypercorn(target: str) -> Callable[[object], list[str]]:
    return lambda port: [PY, "-m", "hypercorn", "-w", "0", "--backlog", "1024", "-b", f"127.0.0.1:{port}", target]


def _uvicorn(app: str, http: str, loop: str, ws: str) -> Callable[[object], list[str]]:
    return lambda port: [
        PY,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backlog",
        "1024",
        "--http",
        http,
        "--loop",
        loop,
        "--ws",
        ws,
        "--no-access-log",
        "--log-level",
        "warning",
        f"{APPS}:{app}_app",
    ]


def _txasgi(app: str) -> Callable[[object], list[str]]:
    return lambda port: [PY, "-m", "bench.servers.txasgi_site", "--app", app, "--port", str(port)]


SERVERS = {
    server.name: server
    for server in [
        Server("twisted-epoll", "native Twisted resources, epoll reactor", _native("epoll")),
        Server("twisted-asyncio", "native Twisted resources, stock asyncio reactor", _native("asyncio")),
        Server("twisted-uvloop", "native Twisted resources, asyncio reactor on uvloop", _native("uvloop")),
        Server(
            "twisted-hybrid", "native Twisted resources on bridge.install_reactor()", _native("bridge"), ("bridge",)
        ),
        Server(
            "twisted-hybrid-uvloop",
            "native Twisted resources on bridge.install_reactor() on a uvloop loop",
            _native("bridge-uvloop"),
            ("bridge", "uvloop"),
        ),
        Server(
            "twisted-streaming",
            "native Twisted resources in bridge.StreamingSite, Twisted's parser, bridge reactor (hybrid serve default)",
            _native("bridge", "twisted"),
            ("bridge",),
        ),
        Server(
            "twisted-fast",
            "native Twisted resources in bridge.StreamingSite, httptools parser, bridge reactor on uvloop",
            _native("bridge-uvloop", "httptools"),
            ("bridge", "httptools", "uvloop"),
        ),
        Server(
            "twisted-httptools",
            "native Twisted resources in bridge.StreamingSite, httptools parser, bridge reactor on asyncio",
            _native("bridge", "httptools"),
            ("bridge", "httptools"),
        ),
        Server("bridge-raw", "raw ASGI app in bridge.ASGIResource", _bridge("raw", "bridge"), ("bridge",)),
        Server("bridge-starlette", "Starlette app in bridge.ASGIResource", _bridge("starlette", "bridge"), ("bridge",)),
        Server(
            "bridge-starlette-uvloop",
            "Starlette in bridge.ASGIResource, bridge.install_reactor() on a uvloop loop",
            _bridge("starlette", "bridge-uvloop"),
            ("bridge",),
        ),
        Server("hybrid-starlette", "Starlette app under `hybrid serve --mount /=...`, defaults", _hybrid("starlette")),
        Server(
            "bridge-raw-fast",
            "raw ASGI app in bridge.ASGIResource, httptools parser, bridge reactor on uvloop",
            _bridge("raw", "bridge-uvloop", "httptools"),
            ("bridge", "httptools", "uvloop"),
        ),
        Server(
            "bridge-starlette-fast",
            "Starlette in bridge.ASGIResource, httptools parser, bridge reactor on uvloop",
            _bridge("starlette", "bridge-uvloop", "httptools"),
            ("bridge", "httptools", "uvloop"),
        ),
        Server("daphne-raw", "Daphne, raw ASGI app", _daphne("raw"), ("daphne",)),
        Server("daphne-starlette", "Daphne, Starlette app", _daphne("starlette"), ("daphne",)),
        Server("hypercorn-raw", "Hypercorn (asyncio), raw ASGI app", _hypercorn(f"{APPS}:raw_app")),
        Server("hypercorn-starlette", "Hypercorn (asyncio), Starlette app", _hypercorn(f"{APPS}:starlette_app")),
        Server(
            "uvicorn-h11-raw",
            "Uvicorn, h11 + asyncio loop + wsproto, raw ASGI app",
            _uvicorn("raw", "h11", "asyncio", "wsproto"),
            ("uvicorn",),
        ),
        Server(
            "uvicorn-h11-starlette",
            "Uvicorn, h11 + asyncio loop + wsproto, Starlette app",
            _uvicorn("starlette", "h11", "asyncio", "wsproto"),
            ("uvicorn",),
        ),
        Server(
            "uvicorn-fast-raw",
            "Uvicorn, httptools + uvloop + websockets, raw ASGI app",
            _uvicorn("raw", "httptools", "uvloop", "websockets-sansio"),
            ("uvicorn", "httptools", "uvloop"),
        ),
        Server(
            "uvicorn-fast-starlette",
            "Uvicorn, httptools + uvloop + websockets, Starlette",
            _uvicorn("starlette", "httptools", "uvloop", "websockets-sansio"),
            ("uvicorn", "httptools", "uvloop"),
        ),
        Server(
            "txasgi-raw",
            "txasgiresource in a Site (asyncio reactor), raw ASGI app",
            _txasgi("raw"),
            ("txasgiresource",),
        ),
        Server(
            "txasgi-starlette",
            "txasgiresource in a Site (asyncio reactor), Starlette app",
            _txasgi("starlette"),
            ("txasgiresource",),
        ),
        Server(
            "reverse-hypercorn",
            "native Twisted resources via bridge.TwistedResourceApp under Hypercorn",
            _hypercorn("bench.servers.reverse:app"),
            ("bridge.reverse",),
        ),
    ]
}

REFERENCE = "twisted-epoll"

_W1 = list(SERVERS)
_TUTORIAL = [
    "twisted-epoll",
    "twisted-hybrid",
    "twisted-fast",
    "bridge-raw",
    "bridge-starlette",
    "hybrid-starlette",
    "bridge-starlette-fast",
    "daphne-starlette",
    "uvicorn-h11-starlette",
    "uvicorn-fast-starlette",
]
_STREAMING = [
    "twisted-epoll",
    "twisted-hybrid",
    "bridge-raw",
    "bridge-starlette",
    "daphne-starlette",
    "hypercorn-starlette",
    "uvicorn-h11-starlette",
    "uvicorn-fast-starlette",
    "txasgi-starlette",
    "reverse-hypercorn",
]
_WEBSOCKET = [
    "twisted-epoll",
    "twisted-hybrid",
    "bridge-raw",
    "bridge-starlette",
    "daphne-raw",
    "daphne-starlette",
    "hypercorn-raw",
    "hypercorn-starlette",
    "uvicorn-h11-starlette",
    "uvicorn-fast-starlette",
    "txasgi-starlette",
]

_BACKGROUND = [
    "bridge-starlette",
    "hybrid-starlette",
    "daphne-starlette",
    "hypercorn-starlette",
    "uvicorn-h11-starlette",
    "uvicorn-fast-starlette",
]

LINEUPS: dict[str, list[str]] = {
    "W1": _W1,
    "W2": _TUTORIAL,
    "W3": _STREAMING,
    "W3-slow": _STREAMING,
    "W4": _STREAMING,
    "W5": _WEBSOCKET,
    "W6": _BACKGROUND,
}
