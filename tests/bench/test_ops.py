"""``python -m bench.ops`` on tiny workloads: both tables come out with a row per case.

No timing is asserted; the figures belong to the benchmark's own results (bench/OPS.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ops_bench_writes_both_tables(tmp_path: Path) -> None:
    out = tmp_path / "OPS.md"
    argv = [sys.executable, "-m", "bench.ops", "--rounds", "1", "--seconds", "1", "--connections", "4"]
    argv += ["--held-connections", "20", "--held-delay", "0.1", "--markdown", str(out)]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for endpoint in ("/twisted/delayed?delay=0", "/asgi/delayed?delay=0"):
        for setting in ("none", "metrics", "metrics + combined", "metrics + json"):
            assert f"| {endpoint} | {setting} |" in text
    for side in ("twisted", "asgi"):
        assert f"| {side} | 40 / 40 | 0 | 0 |" in text
