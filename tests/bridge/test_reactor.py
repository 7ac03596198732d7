"""BridgeReactor: the asyncio reactor whose writes skip the writability round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_large_write_then_reply_through_client_and_server_connections() -> None:
    """A write bigger than the socket buffer is finished by the fallback, and nothing stays watched."""
    out = subprocess.run(
        [sys.executable, str(HERE / "reactor_probe.py")], capture_output=True, text=True, timeout=60, check=True
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert results["reactor"] == "BridgeReactor"
    assert results["reply"] == "done"
    assert results["writers_after_write"] >= 1  # what the kernel refused is watched
    assert results["writers_at_end"] == 0
