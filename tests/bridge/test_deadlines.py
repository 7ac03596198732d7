"""Deadlines of one length on one timer: each fires once, in order, unless cleared."""

from __future__ import annotations

from functools import partial

from twisted.internet.task import Clock

from bridge._deadlines import Deadlines


def test_each_deadline_fires_its_timeout_after_it_was_set_and_a_cleared_one_never_does() -> None:
    clock, fired = Clock(), list[object]()
    deadlines = Deadlines(clock, 10.0)
    deadlines.set("a", lambda: fired.append("a"))
    clock.advance(4)
    deadlines.set("b", lambda: fired.append("b"))
    deadlines.set("c", lambda: fired.append("c"))
    deadlines.clear("c")
    clock.advance(5.9)
    assert fired == []
    clock.advance(0.1)
    assert fired == ["a"]
    clock.advance(3.9)
    assert fired == ["a"]
    clock.advance(0.1)
    assert fired == ["a", "b"]
    assert len(deadlines) == 0 and clock.getDelayedCalls() == []


def test_one_timer_serves_many_deadlines_and_rearms_after_going_idle() -> None:
    clock, fired = Clock(), list[object]()
    deadlines = Deadlines(clock, 1.0)
    for i in range(100):
        deadlines.set(i, partial(fired.append, i))
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(1.0)
    assert fired == list(range(100))
    deadlines.set("late", lambda: fired.append("late"))
    clock.advance(1.0)
    assert fired[-1] == "late"
