"""deploy/nginx in front of two ``hybrid serve`` backends, all on loopback.

nginx (Debian's package, installed by tests/system-deps.sh) runs in the foreground with its own
prefix, pid file and logs in a temporary directory, from a main config that includes the
repository's ``hybrid.conf`` and ``upstream.conf`` with only the addresses changed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from app.tutorial import BODY
from tests.conftest import HybridProcess, hybrid_argv, running
from tests.servers import wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx is not installed (tests/system-deps.sh)")

BACKEND_ARGS = ("--trusted-proxy", "127.0.0.1", "--mount", "/probe=tests.deploy.probe:app")


@dataclass
class Pool:
    """nginx on ``url`` in front of ``backends``."""

    url: str
    port: int
    backends: list[HybridProcess]
    error_log: Path


def render_config(prefix: Path, port: int, backends: list[int]) -> str:
    """The repository's nginx files with this test's addresses, inside a minimal main config."""
    upstream = (DEPLOY / "upstream.conf").read_text()
    servers = iter(backends)
    upstream, count = re.subn(r"server 127\.0\.0\.1:\d+", lambda _: f"server 127.0.0.1:{next(servers)}", upstream)
    assert count == len(backends), "upstream.conf should list one server per backend"
    site, count = re.subn(r"^(\s*)listen [^;]+;\n", "", (DEPLOY / "hybrid.conf").read_text(), flags=re.MULTILINE)
    assert count >= 1
    site = site.replace("server_name _;", f"server_name _;\n    listen 127.0.0.1:{port};")
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 512; }}
http {{
    access_log {prefix / "access.log"};
{temp_paths}
{upstream}
{site}
}}
"""


@contextmanager
def nginx(port: int, backends: list[int]) -> Iterator[Path]:
    """Run nginx until the block ends; yields its error log."""
    prefix = Path(tempfile.mkdtemp(prefix="hybrid-nginx-"))
    prefix.chmod(0o755)  # the workers run as nobody when the master is root
    conf = prefix / "nginx.conf"
    conf.write_text(render_config(prefix, port, backends))
    argv = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"), "-g", "daemon off;"]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _accepts(port) or _exited(proc), "nginx to listen")
        assert proc.poll() is None, (prefix / "error.log").read_text()
        yield prefix / "error.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        return False
    return True


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port(server: HybridProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def pool() -> Iterator[Pool]:
    with ExitStack() as stack:
        backends = [stack.enter_context(running(hybrid_argv(*BACKEND_ARGS))) for _ in range(2)]
        port = _free_port()
        error_log = stack.enter_context(nginx(port, [_port(b) for b in backends]))
        yield Pool(f"http://127.0.0.1:{port}", port, backends, error_log)


def _completed(server: HybridProcess, side: str = "twisted") -> int:
    count: int = httpx.get(f"{server.url}/stats", timeout=10).json()[side]["completed"]
    return count


def test_requests_spread_over_both_backends(pool: Pool) -> None:
    with httpx.Client(timeout=10) as client:
        for _ in range(10):
            response = client.get(f"{pool.url}/twisted/delayed?delay=0")
            assert response.status_code == 200 and response.content == BODY
    counts = [_completed(b) for b in pool.backends]
    assert sum(counts) == 10
    assert all(c > 0 for c in counts), counts


def test_a_websocket_passes_through(pool: Pool) -> None:
    with connect(f"ws://127.0.0.1:{pool.port}/probe/ws", open_timeout=10) as ws:
        ws.send("hello through nginx")
        assert ws.recv(timeout=10) == "hello through nginx"
        ws.send(b"\x00\x01 bytes")
        assert ws.recv(timeout=10) == b"\x00\x01 bytes"


def test_forwarded_for_reaches_the_asgi_scope_as_client(pool: Pool) -> None:
    """The client (127.0.0.2) is what the app sees, not nginx (127.0.0.1) nor a spoofed header."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, timeout=10) as client:
        scope = client.get(f"{pool.url}/probe/scope", headers={"X-Forwarded-For": "203.0.113.9"}).json()
        assert scope["client"][0] == "127.0.0.2"
        assert scope["scheme"] == "http"
        assert scope["server"] == ["127.0.0.1", pool.port]
        # Straight to a backend, the same header comes from an untrusted peer and is ignored.
        direct = client.get(f"{pool.backends[0].url}/probe/scope", headers={"X-Forwarded-For": "203.0.113.9"})
        assert direct.json()["client"][0] == "127.0.0.2"
        assert direct.json()["server"] == ["127.0.0.1", _port(pool.backends[0])]


def test_a_streaming_response_arrives_progressively(pool: Pool) -> None:
    """``first`` reaches the client while the app is still waiting to send ``last``."""
    token = uuid.uuid4().hex
    with httpx.Client(timeout=10) as client, client.stream("GET", f"{pool.url}/probe/gated?token={token}") as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first\n"  # a buffering proxy would hold it: read timeout
        released = [client.post(f"{b.url}/probe/release?token={token}").json()["released"] for b in pool.backends]
        assert released.count(True) == 1
        assert b"".join(chunks) == b"last\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_a_backend_loses_no_idempotent_request(pool: Pool, sig: signal.Signals) -> None:
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    done = threading.Event()

    def client_loop() -> None:
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                response = client.get(f"{pool.url}/twisted/delayed?delay=0.1")
                with lock:
                    results.append((response.status_code, response.content))

    def answered(n: int) -> bool:
        with lock:
            return len(results) >= n

    with ThreadPoolExecutor(4) as executor:
        loops = [executor.submit(client_loop) for _ in range(4)]
        try:
            wait_for(lambda: answered(20), "requests through nginx")
            stopped = pool.backends[0]
            stopped.proc.send_signal(sig)
            stopped.proc.wait(timeout=60)
            with lock:
                after_stop = len(results)
            wait_for(lambda: answered(after_stop + 40), "requests after the backend stopped")
        finally:
            done.set()
        for loop in loops:
            loop.result()
    failures = [(status, body) for status, body in results if status != 200 or body != BODY]
    assert not failures, f"{len(failures)} of {len(results)} failed, e.g. {failures[0]}"
    if sig is signal.SIGKILL:
        # Requests were in flight on the killed backend (each spends 0.1 s there): nginx saw
        # them fail and answered them from the other backend. (After SIGTERM they may as
        # well have finished during the stop.)
        assert "while reading response header from upstream" in pool.error_log.read_text()
    assert _completed(pool.backends[1]) > 0


def test_a_non_idempotent_request_is_not_retried(pool: Pool) -> None:
    """A POST whose backend dies mid-request gets 502; it is never replayed on the other one."""
    with ThreadPoolExecutor(1) as executor:
        post = executor.submit(httpx.post, f"{pool.url}/probe/hold", content=b"x", timeout=30)

        def holder() -> HybridProcess | None:
            counts = [httpx.get(f"{b.url}/probe/count", timeout=10).json()["holds"] for b in pool.backends]
            return pool.backends[counts.index(1)] if 1 in counts else None

        wait_for(lambda: holder() is not None, "the POST to reach a backend")
        victim = holder()
        assert victim is not None
        other = next(b for b in pool.backends if b is not victim)
        victim.proc.send_signal(signal.SIGKILL)
        assert post.result().status_code == 502
    assert httpx.get(f"{other.url}/probe/count", timeout=10).json()["holds"] == 0
