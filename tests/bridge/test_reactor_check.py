"""ASGIResource refuses to be built on the wrong reactor, and says how to fix it.

Each case runs in a fresh interpreter: a reactor, once installed, stays for the process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

BUILD = """
import bridge
try:
    bridge.ASGIResource(lambda scope, receive, send: None)
except bridge.ReactorMismatch as e:
    print(e)
else:
    print("built")
"""


def run(prelude: str) -> str:
    result = subprocess.run([sys.executable, "-c", prelude + BUILD], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("prelude", "expected"),
    [
        ("", "No Twisted reactor is installed yet. Call bridge.install_reactor()"),
        (
            "from twisted.internet import epollreactor\nepollreactor.install()\n",
            "The installed reactor is twisted.internet.epollreactor.EPollReactor, but the bridge needs",
        ),
        ("import bridge\nbridge.install_reactor()\n", "built"),
        ("import bridge\nbridge.install_reactor()\nbridge.install_reactor()\n", "built"),
    ],
    ids=["none", "epoll", "asyncio", "install-twice"],
)
def test_reactor_check(prelude: str, expected: str) -> None:
    assert run(prelude).startswith(expected)


def test_checking_does_not_install_a_reactor() -> None:
    check = "import sys\nimport bridge\ntry:\n    bridge.ASGIResource(None)\nexcept bridge.ReactorMismatch:\n    pass\n"
    out = subprocess.run(
        [sys.executable, "-c", check + "print('twisted.internet.reactor' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"
