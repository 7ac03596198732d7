"""The benchmark harness itself, on one server with tiny workloads: it measures, reports, cleans up.

No timing is asserted (timing belongs to the benchmark's own results); the test checks that a run
produces figures for every workload it was asked for, that RESULTS.md has its sections, and that
the harness leaves none of the processes it started behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: In the environment of everything this module starts, so leftovers can be found by it.
MARKER = f"BENCH_HARNESS_TEST={uuid.uuid4().hex}"


def _harness(*args: str, timeout: float) -> None:
    """Run ``python -m bench`` to completion; on a hang, SIGTERM it so it stops its servers."""
    name, _, value = MARKER.partition("=")
    process = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT, env={**os.environ, name: value})
    try:
        assert process.wait(timeout) == 0
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _leftovers() -> list[str]:
    """Command lines of live processes that inherited this module's environment marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes().split(b"\0")
            if MARKER.encode() in environment:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("bench")
    _harness(
        "--profile",
        "quick",
        "--servers",
        "twisted-epoll",
        "--workloads",
        "W2,W3,W3-slow",
        "--held-connections",
        "40",
        "--held-delay",
        "0.2",
        "--transfer-mib",
        "8",
        "--out",
        str(out / "RESULTS.md"),
        "--json",
        str(out / "results.json"),
        "--no-chart",
        timeout=60,
    )
    yield out


def test_results_file_has_every_section(run: Path) -> None:
    text = (run / "RESULTS.md").read_text()
    for heading in [
        "## Summary (ratios from this run)",
        "## Machine",
        "## Method",
        "### W2 the tutorial at scale",
        "### W3 download",
        "### W3 slow reader",
        "## Servers",
    ]:
        assert heading in text
    assert "| `twisted-epoll` |" in text
    assert "- Kernel: Linux" in text


def test_every_workload_measured_without_errors(run: Path) -> None:
    cells = json.loads((run / "results.json").read_text())["cells"]
    assert sorted(cells) == ["W2", "W3", "W3-slow"]
    for workload, by_server in cells.items():
        cell = by_server["twisted-epoll"]
        assert cell["errors"] == [], workload
        assert len(cell["runs"]) == 1, workload
    held = cells["W2"]["twisted-epoll"]["runs"][0]
    assert held["completed"] == held["expected"] == 80
    assert held["peak_inflight"] == 40
    assert cells["W3"]["twisted-epoll"]["runs"][0]["mb_per_s"] > 0


def test_no_process_left_running(run: Path) -> None:
    assert _leftovers() == []


def test_chart_from_saved_results(run: Path) -> None:
    pytest.importorskip("matplotlib", reason="the chart needs the bench extra (make bench)")
    _harness(
        "--report-only",
        "--json",
        str(run / "results.json"),
        "--out",
        str(run / "again.md"),
        "--chart",
        str(run / "results.png"),
        timeout=60,
    )
    assert (run / "results.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (run / "again.md").read_text() == (run / "RESULTS.md").read_text()
