"""AppCall's waits with several waiting tasks (an app may receive/send from more than one task),
and its ending: the outcome, the grace period on a Clock."""

from __future__ import annotations

import asyncio
from typing import Any

from twisted.internet.task import Clock

from bridge._app_call import AppCall, Outcome, Runner
from bridge._options import InFlight, Options
from tests.bridge.loop_turns import turns


async def wait_for_event(event: asyncio.Event) -> None:
    await event.wait()


def make_call(clock: Clock | None = None) -> tuple[AppCall, list[Outcome]]:
    outcomes: list[Outcome] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    runner = Runner(app, Options(disconnect_grace=2.0), InFlight(), asyncio.get_running_loop(), clock or Clock())
    return AppCall(runner, outcomes.append, lambda: "GET /t"), outcomes


def test_one_wake_releases_every_waiter() -> None:
    async def main() -> None:
        call, _ = make_call()
        waiters = [asyncio.create_task(call.news()) for _ in range(3)]
        await asyncio.sleep(0)  # let them park (a scheduling step, not a timing wait)
        call.wake()
        await asyncio.wait_for(asyncio.gather(*waiters), 5)

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_strand_the_others() -> None:
    async def main() -> None:
        call, _ = make_call()
        first = asyncio.create_task(call.news())
        second = asyncio.create_task(call.news())
        await asyncio.sleep(0)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        call.wake()
        await asyncio.wait_for(first, 5)

    asyncio.run(main())


def test_wake_before_wait_is_not_remembered() -> None:
    async def main() -> None:
        call, _ = make_call()
        call.wake()
        waiter = asyncio.create_task(call.news())
        await asyncio.sleep(0)
        assert not waiter.done()
        call.wake()
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())


def test_resume_releases_all_senders_and_a_gone_connection_never_blocks_again() -> None:
    async def main() -> None:
        call, _ = make_call()
        call.pause()
        senders = [asyncio.create_task(call.writable()) for _ in range(2)]
        await asyncio.sleep(0)
        assert not any(s.done() for s in senders)
        call.resume()
        await asyncio.wait_for(asyncio.gather(*senders), 5)
        call.pause()
        blocked = asyncio.create_task(call.writable())
        await asyncio.sleep(0)
        call.connection_gone()
        await asyncio.wait_for(blocked, 5)
        call.pause()
        await asyncio.wait_for(call.writable(), 5)

    asyncio.run(main())


def test_an_app_still_running_after_the_grace_period_is_cancelled_and_reported_once() -> None:
    async def main() -> None:
        clock = Clock()
        call, outcomes = make_call(clock)
        call.start(asyncio.get_running_loop(), wait_for_event, asyncio.Event())
        await asyncio.sleep(0)
        call.connection_gone()
        clock.advance(1.9)
        await asyncio.sleep(0)
        assert outcomes == []
        clock.advance(0.1)
        await turns(5)
        assert outcomes == [Outcome(cancelled=True)]
        assert clock.getDelayedCalls() == []

    asyncio.run(main())


def test_an_app_that_ends_within_the_grace_period_leaves_no_timer() -> None:
    async def main() -> None:
        clock = Clock()
        call, outcomes = make_call(clock)
        release = asyncio.Event()
        call.start(asyncio.get_running_loop(), wait_for_event, release)
        await asyncio.sleep(0)
        call.connection_gone()
        release.set()
        await turns(5)
        assert [o.returned for o in outcomes] == [True]
        assert clock.getDelayedCalls() == []

    asyncio.run(main())


def test_cancelled_waits_leave_nothing_behind() -> None:
    """An app that polls receive() under a timeout thousands of times does not grow the call."""

    async def main() -> None:
        call, _ = make_call()
        call.pause()
        for _ in range(1000):
            for wait in (call.news(), call.writable()):
                task = asyncio.ensure_future(wait)
                await asyncio.sleep(0)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert not call._news_waiters and not call._writable_waiters

    asyncio.run(main())


def test_an_app_that_fails_before_its_first_await_fails_inside_its_task() -> None:
    async def main() -> None:
        call, outcomes = make_call()

        async def wrong_signature(scope: Any) -> None:  # called with three arguments
            raise AssertionError("not reached")

        call.start(asyncio.get_running_loop(), wrong_signature, {}, None, None)
        assert outcomes == []  # nothing happens inside the caller's stack
        await turns(5)
        assert len(outcomes) == 1 and isinstance(outcomes[0].error, TypeError)

    asyncio.run(main())
