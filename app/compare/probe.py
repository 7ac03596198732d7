"""Talking to the servers' ``/stats``, and checking up front that every side is served.

Checking first turns a server that is not running, or a side it does not serve, into one clear
sentence before any workload starts, instead of a table full of errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from app.compare.targets import Target

#: How long the counters may take to settle after a round (abandoned WSGI requests only leave
#: the server's in-flight count when their thread wakes up, a delay later).
SETTLE_MARGIN = 10.0


class CompareError(Exception):
    """Something the person running the comparison must fix; the message is one line."""


class StatsClient:
    """``/stats`` of one server."""

    def __init__(self, client: httpx.AsyncClient, server: str) -> None:
        self._client = client
        self.url = f"{server}/stats"

    async def get(self) -> dict[str, Any]:
        return await self._call("GET")

    async def reset_peaks(self) -> dict[str, Any]:
        """Start a new peak-in-flight window; returns the counters at that moment."""
        return await self._call("POST")

    async def settled(self, key: str, delay: float) -> dict[str, Any]:
        """The counters once ``key`` has nothing in flight (or after a bounded wait)."""
        deadline = time.monotonic() + delay + SETTLE_MARGIN
        while True:
            snapshot = await self.get()
            if snapshot[key]["in_flight"] == 0 or time.monotonic() > deadline:
                return snapshot
            await asyncio.sleep(0.02)

    async def _call(self, method: str) -> dict[str, Any]:
        try:
            response = await self._client.request(method, self.url)
        except httpx.HTTPError as e:
            raise CompareError(f"{method} {self.url} failed: {_reason(e)}") from None
        if response.status_code != 200:
            raise CompareError(f"{method} {self.url} answered {response.status_code}: is this a hybrid site?")
        try:
            snapshot: dict[str, Any] = response.json()
        except ValueError:
            raise CompareError(f"{self.url} is not JSON: is this a hybrid site?") from None
        return snapshot


async def check_targets(client: httpx.AsyncClient, targets: list[Target], endpoint: str) -> None:
    """Raise ``CompareError`` unless every target's server answers and serves the side."""
    for server in dict.fromkeys(t.server for t in targets):
        names = [t.name for t in targets if t.server == server]
        try:
            await client.get(f"{server}/healthz")
        except httpx.TransportError as e:
            raise CompareError(f"no server at {server} ({_reason(e)}); {_start_hint(names)}") from None
        snapshot = await StatsClient(client, server).get()
        for target in targets:
            if target.server == server and target.stats_key not in snapshot:
                known = ", ".join(k for k in snapshot if k != "process")
                raise CompareError(
                    f"side {target.name!r} is not served at {server}: its /stats has no "
                    f"{target.stats_key!r} counters (it has {known})"
                )
    for target in targets:
        url = target.url(endpoint, 0)
        try:
            response = await client.get(url)
        except httpx.HTTPError as e:
            raise CompareError(f"side {target.name!r}: GET {url} failed: {_reason(e)}") from None
        if response.status_code != 200:
            raise CompareError(f"side {target.name!r} is not served: GET {url} answered {response.status_code}")


def _start_hint(names: list[str]) -> str:
    if "hypercorn" in names:
        return "start it with `hybrid serve --server hypercorn --listen tcp:PORT:interface=127.0.0.1`"
    return "start it with `hybrid serve`"


def _reason(error: httpx.HTTPError) -> str:
    """httpx's message (``All connection attempts failed``), or the error's class name if it has none."""
    return str(error) or type(error).__name__
