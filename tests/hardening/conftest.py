"""A live ``hybrid serve`` with the misbehaving mounts of ``tests.hardening.apps``, checked for leaks.

``serve(*options)`` runs it until the block ends. On the way in it records the server's open file
descriptors (from ``/proc/<pid>/fd``), asyncio tasks and pending reactor delayed calls (from
``/stats``); on the way out it waits until all three are back at or below those figures, fails
if they are not within a bound, then stops the server with SIGTERM and expects exit status 0.
So every live-server test module also proves that it left nothing behind. ``/stats`` is asked
over one kept-alive connection, so that asking does not itself leave closing connections behind
(Hypercorn only lets a closed connection go at its keep-alive timeout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import HybridProcess, hybrid_argv, running
from tests.servers import wait_for

MOUNTS = ("--mount", "/a=tests.hardening.apps:asgi_app", "--mount", "/n=tests.hardening.apps:native")
#: The ``--http`` parsers every hardening test runs against.
PARSERS = ("twisted", "httptools")
#: How long leftovers may take to go (grace timers, closing connections): a bound, not a target.
SETTLE = 20.0


@dataclass
class Server:
    """A running ``hybrid serve`` and the figures a leak would change."""

    process: HybridProcess
    client: httpx.Client
    #: The leak figures right after startup (see ``leak_figures``).
    baseline: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def stats(self) -> dict[str, Any]:
        try:
            response = self.client.get(self.url + "/stats")
        except httpx.TransportError:  # the server closed the kept-alive connection as we asked
            response = self.client.get(self.url + "/stats")
        result: dict[str, Any] = response.json()
        return result

    def leak_figures(self) -> dict[str, int]:
        """Open descriptors, asyncio tasks and pending delayed calls, as the server sees them."""
        process = self.stats()["process"]
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))  # with our /stats connection open, as at baseline
        return {"open_fds": fds, "tasks": process["tasks"], "delayed_calls": process["delayed_calls"]}

    def healthy(self) -> bool:
        return httpx.get(self.url + "/healthz", timeout=10).text == "ok"

    def log(self) -> str:
        return self.process.log()

    def wait_until_settled(self) -> None:
        """Wait until descriptors, tasks and delayed calls are back at (or below) the baseline."""
        seen: list[dict[str, int]] = []

        def back() -> bool:
            seen.append(self.leak_figures())
            return all(seen[-1][name] <= self.baseline[name] for name in self.baseline)

        try:
            wait_for(back, "the server's descriptors, tasks and delayed calls to return to baseline", SETTLE)
        except AssertionError:
            raise AssertionError(f"leak: baseline {self.baseline}, now {seen[-1]}") from None


@pytest.fixture(scope="module", params=PARSERS)
def http(request: pytest.FixtureRequest) -> str:
    """Each HTTP/1.1 parser of the Twisted front (``--http``), in turn: every test runs on both."""
    parser: str = request.param
    return parser


@contextmanager
def serve(*options: str, mounts: bool = True, http: str | None = None) -> Iterator[Server]:
    """``hybrid serve`` with ``options`` (and the test mounts), leak-checked and stopped cleanly.

    ``mounts=False`` for the Hypercorn front, which serves the hybrid site only; ``http`` is the
    ``--http`` parser (the ``http`` fixture's).
    """
    parser = ("--http", http) if http else ()
    argv = hybrid_argv(*(MOUNTS if mounts else ()), *parser, *options)
    with running(argv) as process, httpx.Client(timeout=10) as client:
        server = Server(process, client)
        server.baseline = server.leak_figures()
        yield server
        server.wait_until_settled()
        assert server.healthy()
        assert process.stop() == 0, process.log()
