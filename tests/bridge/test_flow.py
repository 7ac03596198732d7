"""Wakeup and WriteGate with several waiting tasks (an app may receive/send from more than one task)."""

from __future__ import annotations

import asyncio

from bridge._flow import Wakeup, WriteGate


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_one_wake_releases_every_waiter() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        waiters = [asyncio.create_task(wakeup.wait()) for _ in range(3)]
        await asyncio.sleep(0)  # let them park (a scheduling step, not a timing wait)
        wakeup.wake()
        await asyncio.wait_for(asyncio.gather(*waiters), 5)

    run(main())


def test_a_cancelled_waiter_does_not_strand_the_others() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        first = asyncio.create_task(wakeup.wait())
        second = asyncio.create_task(wakeup.wait())
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        wakeup.wake()
        await asyncio.wait_for(first, 5)

    run(main())


def test_wake_before_wait_is_not_remembered() -> None:
    async def main() -> None:
        wakeup = Wakeup(asyncio.get_running_loop())
        wakeup.wake()
        waiter = asyncio.create_task(wakeup.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        wakeup.wake()
        await asyncio.wait_for(waiter, 5)

    run(main())


def test_gate_releases_all_senders_on_resume_and_stays_open_after_close() -> None:
    async def main() -> None:
        gate = WriteGate(asyncio.get_running_loop())
        gate.pause()
        senders = [asyncio.create_task(gate.wait()) for _ in range(2)]
        await asyncio.sleep(0)
        assert not any(s.done() for s in senders)
        gate.resume()
        await asyncio.wait_for(asyncio.gather(*senders), 5)
        gate.pause()
        blocked = asyncio.create_task(gate.wait())
        await asyncio.sleep(0)
        gate.close()
        await asyncio.wait_for(blocked, 5)
        gate.pause()  # a closed gate (connection gone) never blocks again
        await asyncio.wait_for(gate.wait(), 5)

    run(main())
