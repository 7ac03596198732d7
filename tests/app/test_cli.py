"""``hybrid serve`` end to end: listening, --mount, startup and access logs, signals, errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.tutorial import BODY
from tests.conftest import REPO, HybridProcess, hybrid_argv
from tests.servers import wait_for

ASYNCIO_REACTOR = "bridge._reactor.BridgeReactor"  # Twisted's AsyncioSelectorReactor, cheaper writes
MOUNTABLES = "tests.app.mountables"
Start = Callable[..., HybridProcess]


def test_startup_line_names_reactor_and_addresses(hybrid_server: Start, tmp_path: Path) -> None:
    sock = tmp_path / "hybrid.sock"
    server = hybrid_server("--listen", "tcp:0:interface=127.0.0.1", "--listen", f"unix:{sock}")
    assert server.reactor == ASYNCIO_REACTOR
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.addresses[0])
    assert server.addresses[1] == f"unix:{sock}"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
        assert client.get("http://unix/asgi/delayed?delay=0").content == BODY


@pytest.mark.parametrize(("http", "loop"), [("httptools", "uvloop"), ("twisted", "asyncio")])
def test_http_and_loop_are_chosen_and_named_in_the_startup_line(hybrid_server: Start, http: str, loop: str) -> None:
    server = hybrid_server("--http", http, "--loop", loop)
    assert f"with {ASYNCIO_REACTOR} (http {http}, loop {loop})" in server.log()
    assert httpx.get(f"{server.url}/asgi/delayed?delay=0").content == BODY
    assert httpx.get(f"{server.url}/twisted/delayed?delay=0").content == BODY


def test_auto_takes_the_fast_lane_when_installed(hybrid_server: Start) -> None:
    """The test venv has the fast extra, so ``auto`` (the default) means httptools and uvloop."""
    server = hybrid_server("--http", "auto", "--loop", "auto")
    assert f"with {ASYNCIO_REACTOR} (http httptools, loop uvloop)" in server.log()


def test_tls_listener(hybrid_server: Start, certificate: tuple[Path, Path]) -> None:
    """An ssl: endpoint serves HTTPS, and the startup line says https."""
    cert, key = certificate
    server = hybrid_server(
        "--listen",
        f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
    )
    [url] = server.addresses
    assert url.startswith("https://127.0.0.1:")
    for side in ("twisted", "asgi"):
        assert httpx.get(f"{url}/{side}/delayed?delay=0", verify=False).content == BODY


def test_one_access_log_line_per_request_same_format(hybrid_server: Start) -> None:
    server = hybrid_server()
    for side in ("twisted", "asgi"):
        httpx.get(f"{server.url}/{side}/delayed?delay=0", headers={"user-agent": "probe/1"})
    def lines_of(side: str) -> list[str]:
        return [line for line in server.log().splitlines() if f"GET /{side}/delayed" in line]

    wait_for(lambda: all(lines_of(side) for side in ("twisted", "asgi")), "the access lines (written in blocks)")
    lines = {side: lines_of(side) for side in ("twisted", "asgi")}
    assert [len(found) for found in lines.values()] == [1, 1], lines
    shapes = {
        side: re.sub(r"\[[^]]*\]", "[time]", found[0].split(" ", 1)[1]).replace(f"/{side}/", "/SIDE/")
        for side, found in lines.items()
    }
    assert shapes["twisted"] == shapes["asgi"]
    assert '"GET /SIDE/delayed?delay=0 HTTP/1.1" 200 52 "-" "probe/1"' in shapes["twisted"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(hybrid_server: Start, sig: signal.Signals) -> None:
    """SIGINT/SIGTERM stop the server: listener closed, lifespan shut down, exit status 0."""
    server = hybrid_server("--mount", f"/extra={MOUNTABLES}:asgi_app")
    assert server.stop(sig) == 0
    assert "Closed" in server.log()
    assert "mountables.asgi_app: lifespan shutdown" in server.log()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz")


def test_mount_asgi_app_and_twisted_resource(hybrid_server: Start) -> None:
    """Mounted objects are served by type at their prefixes, beside the hybrid site."""
    server = hybrid_server("--mount", f"/extra={MOUNTABLES}:asgi_app", "--mount", f"/old/legacy={MOUNTABLES}:resource")
    assert httpx.get(f"{server.url}/extra/x/y").json() == {"path": "/extra/x/y", "root_path": "/extra", "started": True}
    assert httpx.get(f"{server.url}/old/legacy/z").content == b"hello from twisted at /old/legacy/z"
    assert httpx.get(f"{server.url}/asgi/delayed?delay=0").content == BODY
    assert httpx.get(f"{server.url}/twisted/delayed?delay=0").content == BODY


def test_mount_asgi_app_at_root_replaces_the_site(hybrid_server: Start) -> None:
    """``--mount /=module:app`` serves any ASGI app the way ``daphne module:app`` does."""
    server = hybrid_server("--mount", f"/={MOUNTABLES}:asgi_app", "--mount", f"/legacy={MOUNTABLES}:resource")
    assert httpx.get(f"{server.url}/").json() == {"path": "/", "root_path": "", "started": True}
    assert httpx.get(f"{server.url}/twisted/delayed").json()["path"] == "/twisted/delayed"
    assert httpx.get(f"{server.url}/legacy").content == b"hello from twisted at /legacy"


def test_mount_resource_at_root(hybrid_server: Start) -> None:
    server = hybrid_server("--mount", f"/={MOUNTABLES}:resource")
    assert httpx.get(f"{server.url}/some/where").content == b"hello from twisted at /some/where"


def _serve_fails(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(hybrid_argv(*args), cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    return result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mount", f"/x={MOUNTABLES}:not_an_app"], "is an object of type builtins.int, which is neither"),
        (["--mount", f"/x={MOUNTABLES}:two_parameters"], "which is neither a Twisted IResource"),
        (["--mount", f"/x={MOUNTABLES}:Hello"], "the class tests.app.mountables.Hello (mount an instance?)"),
        (["--mount", f"/x={MOUNTABLES}:missing"], "'tests.app.mountables' has no 'missing'"),
        (["--mount", "/x=no_such_module:app"], "cannot import 'no_such_module'"),
        (["--mount", f"x={MOUNTABLES}:resource"], "prefix 'x' must be a path starting with /"),
        (["--mount", "/x"], "'/x' is not PREFIX=module:attr"),
        (["--mount", f"/x={MOUNTABLES}:resource", "--mount", f"/x/={MOUNTABLES}:asgi_app"], "/x is mounted more"),
        (["--mount", f"/twisted/delayed/x={MOUNTABLES}:resource"], "'delayed' is served by a leaf resource"),
        (["--listen", "nonsense:1"], "--listen nonsense:1:"),
        (["--delay", "61"], "delay must be a number of seconds between 0 and 60"),
    ],
)
def test_bad_options_exit_with_one_clear_line(args: list[str], message: str) -> None:
    result = _serve_fails(*args)
    assert result.returncode == 2
    *usage, last = result.stderr.strip().splitlines()
    assert message in last
    assert all(line.startswith(("usage:", " ")) for line in usage), result.stderr


def test_port_in_use_exits_non_zero() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _serve_fails("--listen", f"tcp:{port}:interface=127.0.0.1")
    assert result.returncode == 1
    assert "cannot listen" in result.stdout


def test_lifespan_startup_failure_exits_non_zero() -> None:
    result = _serve_fails("--mount", f"/x={MOUNTABLES}:failing_startup")
    assert result.returncode == 1
    assert "no database today" in result.stdout


def test_help_lists_serve_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for option in ("--listen", "--delay", "--mount"):
        assert option in result.stdout
