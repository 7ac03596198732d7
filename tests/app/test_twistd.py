"""twistd: the tutorial's .rpy under ``twistd web``, and the ``twistd hybrid`` plugin."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.tutorial import BODY
from tests.conftest import REPO, running
from tests.servers import wait_for

TWISTD = str(Path(sys.executable).parent / "twistd")
RPY_DIR = REPO / "app" / "rpy"


@contextmanager
def twistd_web(tmp_path: Path) -> Iterator[str]:
    """``twistd -n web --path app/rpy`` on a free port; yields its URL once the Site started."""
    log = tmp_path / "twistd.log"
    argv = [
        TWISTD,
        "-n",
        "--pidfile=",
        "web",
        "--listen",
        "tcp:0:interface=127.0.0.1",
        "--path",
        str(REPO / "app" / "rpy"),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
    try:
        port: list[str] = []

        def started() -> bool:
            match = re.search(r"Site starting on (\d+)", log.read_text(errors="replace"))
            if match:
                port.append(match.group(1))
            elif proc.poll() is not None:
                raise AssertionError(f"twistd exited with {proc.returncode}:\n{log.read_text()}")
            return bool(match)

        wait_for(started, "twistd web to listen")
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def test_tutorial_rpy_under_twistd_web(tmp_path: Path) -> None:
    """The .rpy works unchanged with ``twistd -n web --path``: the tutorial's body, 5 s later."""
    with twistd_web(tmp_path) as url:
        response = httpx.get(f"{url}/delayed.rpy", timeout=30)
    assert response.status_code == 200
    assert response.content == BODY


def _install_plugin(tmp_path: Path) -> dict[str, str]:
    """Install the dropin under ``tmp_path`` (not into the venv) and return the env that finds it."""
    result = subprocess.run(
        [sys.executable, "-m", "app", "install-plugin", "--dir", str(tmp_path / "twisted" / "plugins")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (tmp_path / "twisted" / "plugins" / "hybrid_app.py").is_file(), result.stdout
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}


def test_twistd_hybrid_serves_both_sides(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path)
    argv = [TWISTD, "-n", "--pidfile=", "hybrid", "--listen", "tcp:0:interface=127.0.0.1", "--delay", "0.01"]
    with running(argv, env=env, cwd=tmp_path) as server:
        # The plugin installs the bridge's reactor unless twistd already installed
        # Twisted's asyncio reactor (which one ran first differs between environments).
        assert server.reactor in {
            "bridge._reactor.BridgeReactor",
            "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        }
        for side in ("twisted", "asgi"):
            assert httpx.get(f"{server.url}/{side}/delayed").content == BODY
        assert httpx.get(f"{server.url}/stats").json()["asgi"]["completed"] == 1
        # twistd re-raises the signal that stopped it once it has shut down cleanly.
        assert server.stop() == -signal.SIGTERM
        assert "Server Shut Down." in server.log()


def test_twistd_hybrid_takes_http_and_loop(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path)
    argv = [TWISTD, "-n", "--pidfile=", "hybrid", "--listen", "tcp:0:interface=127.0.0.1", "--http", "httptools"]
    with running([*argv, "--loop", "uvloop"], env=env, cwd=tmp_path) as server:
        assert "(http httptools, loop uvloop)" in server.log()
        assert httpx.get(f"{server.url}/asgi/delayed?delay=0").content == BODY


def test_twistd_hybrid_with_reactor_asyncio(tmp_path: Path) -> None:
    """``twistd --reactor=asyncio`` installs the same reactor the plugin would."""
    env = _install_plugin(tmp_path)
    argv = [TWISTD, "--reactor=asyncio", "-n", "--pidfile=", "hybrid", "--listen", "tcp:0:interface=127.0.0.1"]
    with running(argv, env=env, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/asgi/delayed?delay=0").content == BODY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hybrid", "--mount", "/x=no_such_module:app"], "--mount /x=no_such_module:app: cannot import"),
        (["--reactor=select", "hybrid"], "the bridge needs Twisted's AsyncioSelectorReactor"),
        (["--reactor=asyncio", "hybrid", "--loop", "uvloop"], "already installed on asyncio, not uvloop"),
    ],
)
def test_twistd_hybrid_refuses_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = _install_plugin(tmp_path)
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", *args],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("twistd hybrid: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_twistd_hybrid_log_level_filters_twistds_own_log(tmp_path: Path) -> None:
    """`twistd hybrid --log-level warn`: twistd's log (--logfile) keeps no info line, and the site serves."""
    sock, logfile = tmp_path / "s", tmp_path / "twistd.log"
    argv = [TWISTD, "-n", "--pidfile=", f"--logfile={logfile}", "hybrid", "--listen", f"unix:{sock}"]
    proc = subprocess.Popen([*argv, "--log-level", "warn"], stdout=subprocess.DEVNULL, start_new_session=True)
    try:

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(logfile.read_text() if logfile.exists() else "twistd exited")
            with socket.socket(socket.AF_UNIX) as probe:
                return probe.connect_ex(str(sock)) == 0

        wait_for(listening, "twistd to listen on its socket")
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.get("http://unix/healthz").status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    text = logfile.read_text()
    assert "#info]" not in text and "hybrid serving on" not in text
