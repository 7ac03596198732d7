"""``hybrid compare`` end to end: a real ``hybrid compare`` process against real servers.

The figures are checked against what they must be whatever the machine's speed: request
counts, outcomes, the server's own counters and peak in flight (each round's requests are all in
flight at once, the tutorial's claim), and one timeline bar per request. No timing thresholds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.compare.plot import ABANDONED, SIDE_COLOURS
from app.tutorial import stream_parts
from tests.conftest import REPO, HybridProcess, hybrid_argv, running

SIDES = ("twisted", "asgi", "hypercorn")


@pytest.fixture(scope="module")
def site() -> Iterator[HybridProcess]:
    with running(hybrid_argv()) as server:
        yield server


@pytest.fixture(scope="module")
def hypercorn_site() -> Iterator[HybridProcess]:
    """The same site under Hypercorn, whose ``/asgi`` is the pure-asyncio reference."""
    with running(hybrid_argv("--server", "hypercorn")) as server:
        yield server


def compare(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "app", "compare", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=90)


def compare_ok(site: HybridProcess, *args: str) -> subprocess.CompletedProcess[str]:
    result = compare("--url", site.url, *args)
    assert result.returncode == 0, result.stderr
    return result


def read_json(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def test_json_has_every_request_and_consistent_figures(
    site: HybridProcess, hypercorn_site: HybridProcess, tmp_path: Path
) -> None:
    """6 requests per side, 3 at a time: two rounds per side, all 6 completed and counted by the server."""
    out = tmp_path / "run.json"
    result = compare_ok(
        site,
        *("--hypercorn-url", hypercorn_site.url, "--sides", ",".join(SIDES)),
        *("--requests", "6", "--concurrency", "3", "--delay", "0.2", "--json", str(out)),
    )
    document = read_json(out)
    assert document["options"]["sides"] == list(SIDES)
    assert [side["side"] for side in document["sides"]] == list(SIDES)
    for side in document["sides"]:
        figures, requests = side["figures"], side["requests"]
        assert sorted(r["index"] for r in requests) == list(range(6))
        assert all(r["outcome"] == "completed" and r["status"] == 200 for r in requests)
        assert all(r["sent"] <= r["first_byte"] <= r["ended"] for r in requests)
        assert [span["round"] for span in side["rounds"]] == [0, 1]
        assert figures["requests"] == figures["completed"] == figures["server_completed"] == 6
        assert figures["errors"] == figures["abandoned"] == figures["server_abandoned"] == 0
        assert figures["server_peak_in_flight"] == 3
        assert figures["latency_p50"] <= figures["latency_p90"] <= figures["latency_p99"] <= figures["latency_max"]
        assert figures["throughput_rps"] == pytest.approx(6 / figures["wall_seconds"])
        assert figures["server_cpu_seconds"] > 0
    assert "ratio to twisted" in result.stdout
    for side in SIDES:
        assert side in result.stdout
    assert result.stdout.startswith(
        "6 requests per side, 3 at a time, GET /twisted/delayed, /asgi/delayed, /asgi/delayed on hypercorn ?delay=0.2\n"
    )
    assert result.stdout.endswith(f"wrote every figure and request to {out}\n")


def test_rounds_alternate_between_sides(site: HybridProcess, tmp_path: Path) -> None:
    """Round 0 runs twisted then asgi, round 1 asgi then twisted: noise lands on both alike."""
    out = tmp_path / "run.json"
    compare_ok(site, "--requests", "4", "--concurrency", "2", "--delay", "0", "--json", str(out))
    twisted, asgi = (side["rounds"] for side in read_json(out)["sides"])
    assert twisted[0]["end"] <= asgi[0]["start"]
    assert asgi[1]["end"] <= twisted[1]["start"]


def test_abandoned_requests_are_cancelled_on_both_sides(site: HybridProcess, tmp_path: Path) -> None:
    """--abandon 0.5: half the requests are aborted by the client and counted abandoned by the server."""
    out = tmp_path / "run.json"
    compare_ok(site, "--requests", "4", "--delay", "0.4", "--abandon", "0.5", "--json", str(out))
    for side in read_json(out)["sides"]:
        figures = side["figures"]
        assert (figures["completed"], figures["abandoned"]) == (2, 2)
        assert (figures["server_completed"], figures["server_abandoned"]) == (2, 2)
        assert [r["index"] for r in side["requests"] if r["outcome"] == "abandoned"] == [1, 3]


def test_stream_endpoint(site: HybridProcess, tmp_path: Path) -> None:
    """--endpoint stream: every response is read to its last chunk."""
    out = tmp_path / "run.json"
    result = compare_ok(site, "--endpoint", "stream", "--requests", "2", "--delay", "0.1", "--json", str(out))
    assert "GET /twisted/stream, /asgi/stream ?delay=0.1" in result.stdout
    for side in read_json(out)["sides"]:
        assert {r["size"] for r in side["requests"]} == {len(b"".join(stream_parts()))}


def test_svg_timeline_has_a_bar_per_request(site: HybridProcess, tmp_path: Path) -> None:
    plot = tmp_path / "timeline.svg"
    result = compare_ok(site, "--requests", "5", "--delay", "0.2", "--abandon", "0.4", "--plot", str(plot))
    assert result.stdout.endswith(f"drew the timeline to {plot}\n")
    svg = plot.read_text()
    assert svg.startswith("<?xml")
    for side in ("twisted", "asgi"):
        for index in range(5):
            assert svg.count(f'id="request-{side}-{index}"') == 1


def test_png_timeline_has_a_bar_per_request(site: HybridProcess, tmp_path: Path) -> None:
    """Counted in the picture: at a point every bar covers, one run of bar-coloured pixels per request."""
    plot = tmp_path / "timeline.png"
    compare_ok(site, "--requests", "5", "--delay", "0.3", "--abandon", "0.4", "--plot", str(plot))
    with Image.open(plot) as image:
        assert image.format == "PNG"
        pixels = image.convert("RGB")
        column = [pixels.getpixel((image.width // 4, y)) for y in range(image.height)]
    bar_colours = {_rgb(ABANDONED)} | {_rgb(c) for c in SIDE_COLOURS[:2]}
    runs = sum(1 for above, here in zip([None, *column], column, strict=False) if here in bar_colours and above != here)
    assert runs == 10


def test_help_explains_every_option() -> None:
    """``--help`` has a sentence for every option, ``--endpoint`` included."""
    result = compare("--help")
    assert result.returncode == 0
    assert "what each side is asked for, /<side>/ENDPOINT" in " ".join(result.stdout.split())


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_no_server_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = compare("--url", url, "--requests", "1")
    assert result.returncode == 1
    assert _error_line(result).startswith(f"hybrid compare: error: no server at {url} (")


def test_side_that_is_not_served_is_one_line(hybrid_server: Callable[..., HybridProcess]) -> None:
    server = hybrid_server("--mount", "/asgi=tests.app.compare_mounts:nothing")
    result = compare("--url", server.url, "--requests", "1")
    assert result.returncode == 1
    assert _error_line(result) == (
        f"hybrid compare: error: side 'asgi' is not served: GET {server.url}/asgi/delayed?delay=0 answered 404"
    )


def test_options_that_do_not_go_together_are_one_line(site: HybridProcess) -> None:
    result = compare("--url", site.url, "--abandon", "0.5", "--delay", "0")
    assert result.returncode == 2
    assert (
        _error_line(result) == "hybrid compare: error: --abandon needs a --delay above 0: there is nothing to abandon"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sides", "twisted,nodejs"], "unknown side 'nodejs' (known sides: twisted, asgi, wsgi, hypercorn)"),
        (["--sides", "asgi,asgi"], "a side is named twice"),
        (["--requests", "0"], "'0' is not a whole number of at least 1"),
        (["--concurrency", "many"], "'many' is not a whole number of at least 1"),
        (["--delay", "-1"], "delay must be a number of seconds between 0 and 60"),
        (["--abandon", "1.5"], "'1.5' is not a fraction between 0 and 1"),
        (["--endpoint", "slow"], "invalid choice: 'slow'"),
        (["--plot", "timeline.gif"], "the plot is drawn as .png or .svg"),
        (["--url", "127.0.0.1:8080"], "'127.0.0.1:8080' is not an http:// or https:// URL"),
    ],
)
def test_bad_arguments_exit_with_one_clear_line(args: list[str], message: str) -> None:
    """argparse's usage, then one error line, exit 2 (as ``hybrid serve`` does)."""
    result = compare(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    *usage, last = result.stderr.strip().splitlines()
    assert last.startswith("hybrid compare: error: argument ")
    assert message in last
    assert all(line.startswith(("usage:", " ")) for line in usage), result.stderr
