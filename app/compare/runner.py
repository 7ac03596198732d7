"""Fire the same workload at each side, in alternating rounds, and time every request.

Each side's N requests are cut into rounds of C concurrent requests. Round 1 runs side A's
first C requests, then side B's; round 2 runs B first, then A; and so on. Machine noise (another
process waking up, the CPU's clock changing) then lands on every side alike rather than on
whichever side happened to run second; an unmeasured warm-up round first keeps the client's
own start-up costs off the first side. Every request opens its own connection, so no side
inherits warm connections from another, and an abandoned request closes its socket, which is
how the server learns the client left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from app.compare.probe import CompareError, StatsClient
from app.compare.results import Outcome, RequestRecord, RoundSpan, SideResult
from app.compare.targets import Target
from app.tutorial import WARMUP

#: Added to the delay for the client's own timeout: a request slower than that is an error.
TIMEOUT_MARGIN = 30.0


@dataclass(frozen=True)
class Workload:
    requests: int
    concurrency: int
    delay: float
    endpoint: str
    #: The fraction of requests the client aborts on purpose, halfway through the delay.
    abandon: float

    def rounds(self) -> list[range]:
        """The request indices of each round."""
        step = self.concurrency
        return [range(start, min(start + step, self.requests)) for start in range(0, self.requests, step)]

    def abandon_after(self, index: int) -> float | None:
        """Seconds after which request ``index`` is aborted, or None if it runs to the end.

        The abandoned ones are spread evenly: ``int(N * fraction)`` of them in all.
        """
        if int((index + 1) * self.abandon) > int(index * self.abandon):
            return self.delay / 2
        return None


OnDone = Callable[[Target, RequestRecord], None]


class Runner:
    """Runs one workload against the targets; ``on_done`` hears of each request as it ends."""

    def __init__(self, workload: Workload, targets: list[Target], on_done: OnDone) -> None:
        self._workload = workload
        self._targets = targets
        self._on_done = on_done
        self._t0 = time.perf_counter()

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    async def run(self) -> list[SideResult]:
        results = {t.name: SideResult(t) for t in self._targets}
        limits = httpx.Limits(max_connections=self._workload.concurrency, max_keepalive_connections=0)
        timeout = httpx.Timeout(self._workload.delay + TIMEOUT_MARGIN)
        async with (
            httpx.AsyncClient(limits=limits, timeout=timeout) as client,
            httpx.AsyncClient(timeout=timeout) as control,
        ):
            stats = {t.server: StatsClient(control, t.server) for t in self._targets}
            await self._warm_up(client, stats)
            self._t0 = time.perf_counter()
            for round_, indices in enumerate(self._workload.rounds()):
                shift = round_ % len(self._targets)
                for target in self._targets[shift:] + self._targets[:shift]:
                    await self._round(client, stats[target.server], results[target.name], round_, indices)
        return list(results.values())

    async def _warm_up(self, client: httpx.AsyncClient, stats: dict[str, StatsClient]) -> None:
        """One unmeasured round at ``?delay=0&warmup=1`` per side (``warmup``: left out of ``/stats``).

        The client's first connections pay one-off costs (asyncio starts the threads that resolve
        host names, httpx builds its transport), which would otherwise all land on the first side.
        """
        for target in self._targets:
            url = f"{target.url(self._workload.endpoint, 0)}&{WARMUP}=1"
            try:
                await asyncio.gather(*(client.get(url) for _ in range(self._workload.concurrency)))
            except httpx.HTTPError as e:
                raise CompareError(f"warm-up request to {url} failed: {type(e).__name__}: {e}") from None
            # Nothing of an earlier run may still be in flight when this one starts.
            await stats[target.server].settled(target.stats_key, 0)

    async def _round(
        self, client: httpx.AsyncClient, stats: StatsClient, result: SideResult, round_: int, indices: range
    ) -> None:
        target = result.target
        before = await stats.reset_peaks()
        start = self._now()
        records = await asyncio.gather(*(self._fetch(client, target, i, round_) for i in indices))
        end = self._now()
        after = await stats.settled(target.stats_key, self._workload.delay)
        result.rounds.append(RoundSpan(round_, start, end))
        result.requests.extend(records)
        result.server.add_round(target.stats_key, before, after)

    async def _fetch(self, client: httpx.AsyncClient, target: Target, index: int, round_: int) -> RequestRecord:
        url = target.url(self._workload.endpoint, self._workload.delay)
        first_byte: float | None = None
        status: int | None = None
        size = 0
        error: str | None = None
        outcome: Outcome
        sent = self._now()
        try:
            async with asyncio.timeout(self._workload.abandon_after(index)):
                async with client.stream("GET", url) as response:
                    first_byte = self._now()
                    status = response.status_code
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
        except TimeoutError:
            outcome = "abandoned"
        except httpx.HTTPError as e:
            outcome, error = "error", f"{type(e).__name__}: {e}"
        else:
            outcome = "completed" if status == 200 else "error"
            error = None if status == 200 else f"HTTP {status}"
        record = RequestRecord(index, round_, sent, first_byte, self._now(), outcome, status, size, error)
        self._on_done(target, record)
        return record
