"""Pure pieces, tested as plain functions: delay parsing, counters, mount specs and detection."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from app.mounts import Kind, MountSpec, detect
from app.stats import SideStats, Stats
from app.tutorial import DelayError, parse_delay
from tests.app import mountables


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], 5.0), (["0"], 0.0), (["0.25"], 0.25), (["60"], 60.0), (["60.0"], 60.0), (["7."], 7.0), ([".5"], 0.5)],
)
def test_parse_delay_accepts(values: list[str], expected: float) -> None:
    assert parse_delay(values, 5.0) == expected


@pytest.mark.parametrize(
    "values",
    [["abc"], ["-1"], ["60.01"], ["nan"], ["inf"], ["1e1"], [""], [" 1"], ["1 "], ["1_0"], ["."], ["1", "2"]],
)
def test_parse_delay_refuses(values: list[str]) -> None:
    with pytest.raises(DelayError) as raised:
        parse_delay(values, 5.0)
    assert str(raised.value).count("\n") == 1
    assert str(raised.value).endswith("\n")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_side_stats_counts_and_latency() -> None:
    clock = FakeClock()
    side = SideStats(now=clock)
    trackers = [side.begin() for _ in range(4)]
    assert (side.in_flight, side.peak_in_flight) == (4, 4)
    for seconds, tracker in zip([1.0, 2.0, 3.0], trackers, strict=False):
        clock.now = seconds
        tracker.complete()
    trackers[3].abandon()
    trackers[3].complete()  # a second outcome is ignored
    snapshot = side.snapshot()
    assert snapshot == {
        "in_flight": 0,
        "peak_in_flight": 4,
        "completed": 3,
        "abandoned": 1,
        "latency": {"count": 3, "mean": 2.0, "p50": 2.0, "p90": 3.0, "p99": 3.0, "max": 3.0},
    }


def test_empty_latency_is_null() -> None:
    latency = SideStats().snapshot()["latency"]
    assert latency == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}


def test_stats_sides_in_order_and_extensible() -> None:
    stats = Stats(["twisted", "asgi"])
    stats.add_side("wsgi").begin()
    sides = ["twisted", "asgi", "wsgi"]
    assert [key for key in stats.snapshot() if key in sides] == sides
    assert stats["wsgi"].in_flight == 1
    with pytest.raises(ValueError, match="already"):
        stats.add_side("asgi")


@pytest.mark.parametrize(
    ("text", "spec", "segments"),
    [
        ("/=m:a", MountSpec("/", "m", "a"), []),
        ("/x=pkg.mod:obj.attr", MountSpec("/x", "pkg.mod", "obj.attr"), [b"x"]),
        ("/x/y/=m:a", MountSpec("/x/y/", "m", "a"), [b"x", b"y"]),
    ],
)
def test_mount_spec_parse(text: str, spec: MountSpec, segments: list[bytes]) -> None:
    assert MountSpec.parse(text) == spec
    assert spec.segments == segments


@pytest.mark.parametrize("text", ["x=m:a", "/x", "/x=m", "/x=:a", "/x=m:", "//x=m:a", "/x//y=m:a"])
def test_mount_spec_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        MountSpec.parse(text)


async def _asgi_function(scope: object, receive: object, send: object) -> None:
    """An ASGI 3 app as a plain function."""


async def _two_arguments(scope: object, receive: object) -> None:
    """Not ASGI 3: two parameters."""


def _sync_three(scope: object, receive: object, send: object) -> None:
    """Not ASGI: not a coroutine function."""


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (mountables.resource, Kind.RESOURCE),
        (mountables.asgi_app, Kind.ASGI),
        (_asgi_function, Kind.ASGI),
        (Starlette(), Kind.ASGI),
        (mountables.Hello, None),
        (mountables.two_parameters, None),
        (_two_arguments, None),
        (_sync_three, None),
        (42, None),
    ],
)
def test_detect(target: object, kind: Kind | None) -> None:
    assert detect(target) is kind
