"""The README's "Migrating from Twisted to asyncio" walkthrough, command by command.

Each command is run as the README prints it (plus a free port: ``--listen``, ``--bind fd://``
or ``--fd``), from the repository root, and the same checks pin csvtsdb's behaviour on every
front: the Klein original, the half-rewritten app on the Twisted front (phase 1) and under
asyncio servers (phase 2).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.bridge.asgi_cli import serving
from tests.conftest import LOCAL, running

BIN = Path(sys.executable).parent

#: The walkthrough's commands, as the README prints them.
PHASE_1 = [
    "hybrid serve --mount /=tests.walkthrough.legacy:resource",
    "hybrid serve --mount /=tests.walkthrough.rewritten:app",
]
PHASE_2 = [
    "hypercorn tests.walkthrough.rewritten:app",
    "uvicorn tests.walkthrough.rewritten:app",
    "hybrid serve --server hypercorn --mount /=tests.walkthrough.rewritten:app",
]

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = "TSDB_FILE=/tmp/data.csv "

LINE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00, \"%s\", %s\n"


@contextmanager
def served(command: str, data: Path) -> Iterator[str]:
    """Run a README command on a free port; yield its URL."""
    program, *args = command.split()
    env = {"TSDB_FILE": str(data)}
    if program == "hybrid":
        with running([str(BIN / "hybrid"), *args, "--listen", LOCAL], env=env) as server:
            yield server.url
    else:
        module = args[-1]
        with serving(program, module, env=env, ready_path="/") as server:
            yield server.url


@pytest.mark.parametrize("command", PHASE_1 + PHASE_2)
def test_csvtsdb_behaves_the_same(command: str, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    with served(command, data) as url, httpx.Client(base_url=url) as client:
        empty = client.get("/")
        assert (empty.status_code, empty.content, empty.headers["content-type"]) == (200, b"", "text/html")
        for line in ("coffee 2", "tea", "water 0.5"):
            saved = client.post("/", content=line)
            assert (saved.status_code, saved.content) == (204, b"")
        refused = client.post("/", content="a,b 2")
        assert refused.status_code == 400
        assert refused.headers["content-type"] == "text/plain"
        assert refused.text == "400 Bad Request: label may not contain a , (comma)"
        tail = client.get("/")
        # csvtsdb's own quirk, kept by the rewrite: the first line read is dropped.
        assert re.fullmatch(LINE % ("tea", "1.0") + LINE % ("water", "0.5"), tail.text)
        assert tail.headers["content-type"] == "text/html"
        assert client.get("/nothing").status_code == 404
    assert re.fullmatch(LINE % ("coffee", "2.0") + LINE % ("tea", "1.0") + LINE % ("water", "0.5"), data.read_text())


def test_these_are_the_readme_commands() -> None:
    printed = [line.removeprefix(PREFIX) for line in README.read_text().splitlines() if line.startswith(PREFIX)]
    assert printed == PHASE_1 + PHASE_2
