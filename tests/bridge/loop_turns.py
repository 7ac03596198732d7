"""Loop-turn helpers for the in-process tests: bounded in turns of the loop, never in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def settle(condition: Callable[[], bool], turns: int = 1000) -> None:
    """Let the loop run until ``condition()`` holds."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def turns(n: int = 20) -> None:
    """Let the loop turn ``n`` times: enough for a woken or cancelled task to run to its end."""
    for _ in range(n):
        await asyncio.sleep(0)
