"""Fixtures: the two fronts, started once per session, and per-test servers.

``front`` is the one parametrised fixture every shared test uses: the probe
mounted at ``/mnt`` on the bridge, and the same probe under Hypercorn with
``root_path="/mnt"``.  Hypercorn-only gaps are declared on the test with
``@pytest.mark.hypercorn_gap(reason)``, which becomes a strict xfail for the
Hypercorn run only (``strict=False`` where the gap shows only when a race
inside Hypercorn goes one way); the bridge run of the same test must pass.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conformance.fronts import KINDS, Front, Server, Spawn, launch


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hypercorn_gap(reason): Hypercorn, the reference, is known not to do this (strict xfail there)"
    )


@pytest.fixture(scope="session")
def client_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """A client context that trusts the test certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(certificate[0]))


class ServerPool:
    """Servers shared by the session, started on first use, killed at the end."""

    def __init__(self, certificate: tuple[Path, Path], directory: Path) -> None:
        self._cert, self._key = (str(p) for p in certificate)
        self._dir = directory
        self._servers: dict[tuple[str, str], Server] = {}

    def get(self, kind: str, variant: str = "main") -> Server:
        key = (kind, variant)
        if key not in self._servers:
            self._servers[key] = self._launch(kind, variant)
        return self._servers[key]

    def _launch(self, kind: str, variant: str) -> Server:
        unix = str(self._dir / f"{kind}-{variant}.sock")
        if kind.startswith("bridge"):
            # One bridge process serves every variant (see serve_bridge.py).
            assert variant == "main", variant
            return launch(kind, ["--cert", self._cert, "--key", self._key, "--unix", unix], control_mount="/mnt")
        root_path, extra = {
            "main": ("/mnt", ["--cert", self._cert, "--key", self._key, "--unix", unix]),
            "root": ("", []),
            "proxied": ("/proxied", ["--proxy-fix"]),
            "legacy": ("/legacy", ["--legacy"]),
        }[variant]
        return launch(kind, ["--root-path", root_path, *extra], control_mount=root_path)

    def close(self) -> None:
        for server in self._servers.values():
            server.kill()
            server.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def pool(certificate: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    servers = ServerPool(certificate, tmp_path_factory.mktemp("sockets"))
    try:
        yield servers
    finally:
        servers.close()


def _note_gap(request: pytest.FixtureRequest, kind: str) -> None:
    marker = request.node.get_closest_marker("hypercorn_gap")
    if marker is not None and kind == "hypercorn":
        # strict unless the gap depends on a race inside Hypercorn (hypercorn_gap(reason, strict=False))
        strict = marker.kwargs.get("strict", True)
        request.node.add_marker(pytest.mark.xfail(reason=marker.args[0], strict=strict))


def _mount(pool: ServerPool, kind: str, mount: str, *, port: str = "http", scheme: str = "http") -> Front:
    """The probe at ``mount``; for Hypercorn each mount is its own server."""
    if kind.startswith("bridge"):
        server = pool.get(kind)
        return Front(kind, server, server.info["root" if mount == "" else port], mount, scheme)
    variant = {"/mnt": "main", "": "root", "/proxied": "proxied", "/legacy": "legacy"}[mount]
    server = pool.get(kind, variant)
    return Front(kind, server, server.info[port], mount, scheme)


@pytest.fixture(params=KINDS)
def front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe at ``/mnt``, plain HTTP, on each front."""
    _note_gap(request, request.param)
    return _mount(pool, request.param, "/mnt")


@pytest.fixture(params=[(k, m) for k in KINDS for m in ("/mnt", "")], ids=lambda p: f"{p[0]}-at-{p[1] or 'root'}")
def mounted_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe at ``/mnt`` and at the site root, on each front."""
    kind, mount = request.param
    _note_gap(request, kind)
    return _mount(pool, kind, mount)


@pytest.fixture(params=KINDS)
def tls_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe at ``/mnt`` over TLS (ALPN offers h2 and http/1.1)."""
    _note_gap(request, request.param)
    return _mount(pool, request.param, "/mnt", port="https", scheme="https")


@pytest.fixture(params=KINDS)
def limited_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe with a 1 MiB request body limit (Hypercorn has no such setting)."""
    _note_gap(request, request.param)
    if request.param.startswith("bridge"):
        server = pool.get(request.param)
        return Front(request.param, server, server.info["http"], "/limited")
    return _mount(pool, request.param, "/mnt")


@pytest.fixture(params=KINDS)
def tls_limited_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """``limited_front`` over TLS (ALPN h2)."""
    _note_gap(request, request.param)
    if request.param.startswith("bridge"):
        server = pool.get(request.param)
        return Front(request.param, server, server.info["https"], "/limited", "https")
    return _mount(pool, request.param, "/mnt", port="https", scheme="https")


@pytest.fixture(params=KINDS)
def proxied_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe behind trusted proxy headers: the bridge trusts 127.0.0.1, Hypercorn one hop."""
    _note_gap(request, request.param)
    return _mount(pool, request.param, "/proxied")


@pytest.fixture(params=KINDS)
def legacy_front(request: pytest.FixtureRequest, pool: ServerPool) -> Front:
    """The probe in ASGI 2 (two-callable) form."""
    _note_gap(request, request.param)
    return _mount(pool, request.param, "/legacy")


@pytest.fixture
def spawn(certificate: tuple[Path, Path], tmp_path: Path) -> Iterator[Spawn]:
    """Start a dedicated server for one test (lifespan modes, SIGTERM); always killed after."""
    started: list[Server] = []

    def start(kind: str, *, lifespan: str = "normal", ready: bool = True) -> Server:
        env = {"PROBE_LIFESPAN": lifespan}
        if kind.startswith("bridge"):
            args = ["--cert", str(certificate[0]), "--key", str(certificate[1]), "--unix", str(tmp_path / "b.sock")]
            server = launch(kind, args, control_mount="/mnt", env=env, ready=ready)
        else:
            server = launch(kind, ["--root-path", "/mnt"], control_mount="/mnt", env=env, ready=ready)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()
            server.log_path.unlink(missing_ok=True)
