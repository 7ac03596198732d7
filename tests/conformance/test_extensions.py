"""Checklist §6, assertions 96-100: extensions, advertised only when implemented, and legacy apps."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance import wire
from tests.conformance.fronts import DEADLINE, Front
from tests.conformance.memory import MAX_GROWTH, MB, watch_rss
from tests.conformance.rawhttp import Connection
from tests.conformance.script import body, probe_headers, receive_body, send, send_errors, start

READ = receive_body()
OK = [start(200, [(b"content-length", b"2")]), body(b"ok")]


def pathsend(path: Path) -> dict[str, Any]:
    return {"type": "http.response.pathsend", "path": str(path)}


def extensions_of(front: Front, rid: str, **client_options: Any) -> dict[str, Any]:
    with httpx.Client(timeout=DEADLINE, **client_options) as client:
        response = client.get(front.url(f"/{rid}"), headers=probe_headers(rid))
    extensions: dict[str, Any] = wire.loads(response.content)["scope"].get("extensions", {})
    return extensions


@pytest.mark.hypercorn_gap("Hypercorn 0.18 does not provide the tls extension")
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_tls_extension(
    tls_front: Front, client_tls: ssl.SSLContext, certificate: tuple[Path, Path], http2: bool
) -> None:
    """96: over TLS without a client certificate: server_cert, tls_version, cipher_suite; no client cert."""
    tls = extensions_of(tls_front, f"tls-{http2}", verify=client_tls, http2=http2)["tls"]
    assert tls["server_cert"] is None or tls["server_cert"].strip() == certificate[0].read_text().strip()
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert tls["cipher_suite"] is None or (type(tls["cipher_suite"]) is int and 0 < tls["cipher_suite"] < 0x10000)
    assert not tls.get("client_cert_chain")
    assert tls.get("client_cert_name") is None


#: One message of each extension type, as an app would send it after start.
EXTENSION_MESSAGES: dict[str, dict[str, Any]] = {
    "http.response.trailers": {"type": "http.response.trailers", "headers": [], "more_trailers": False},
    "http.response.push": {"type": "http.response.push", "path": "/pushed", "headers": []},
    "http.response.zerocopysend": {"type": "http.response.zerocopysend", "file": None},
    "http.response.pathsend": {"type": "http.response.pathsend", "path": "/dev/null"},
    "http.response.early_hint": {"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]},
    "http.response.debug": {"type": "http.response.debug", "info": {}},
}


def test_unadvertised_extension_messages_raise(front: Front) -> None:
    """97: a message of an extension the scope does not advertise makes send() raise; debug is never advertised."""
    advertised = extensions_of(front, "ext-scope")
    assert "http.response.debug" not in advertised
    missing = sorted(set(EXTENSION_MESSAGES) - set(advertised))
    assert missing
    for name in missing:
        rid = f"ext-{name}"
        steps = [READ, start(200, [(b"content-length", b"2")]), send(EXTENSION_MESSAGES[name], catch=True), body(b"ok")]
        with Connection(front) as conn:
            conn.request("GET", f"/{rid}", probe_headers(rid, *steps))
            response = conn.read_response()
        assert (response.status, response.body) == (200, b"ok")
        errors = send_errors(front.wait_done(rid))
        assert [e["type"] for e in errors] == [name], f"{name} was accepted without being advertised"


@pytest.mark.hypercorn_gap("Hypercorn 0.18 does not implement http.response.pathsend")
def test_pathsend_streams_the_file(front: Front, tmp_path: Path) -> None:
    """98: start with content-length, then pathsend: exactly the file's bytes, response complete, memory flat."""
    assert "http.response.pathsend" in extensions_of(front, "pathsend-scope")
    path = tmp_path / "payload.bin"
    block = os.urandom(MB)
    with path.open("wb") as f:
        for _ in range(64):
            f.write(block)
    size = path.stat().st_size
    steps = [
        READ,
        start(200, [(b"content-length", b"%d" % size), (b"content-type", b"application/octet-stream")]),
        send(pathsend(path)),
    ]
    with Connection(front, rcvbuf=256 * 1024) as conn, watch_rss(front.server) as rss:
        conn.request("GET", "/pathsend", probe_headers("pathsend", *steps))
        response = conn.read_response()
        assert response.complete
        assert_reusable_after_pathsend(conn)
    assert len(response.body) == size
    assert hashlib.sha256(response.body).digest() == hashlib.sha256(block * 64).digest()
    assert rss.growth < MAX_GROWTH, rss.describe()


def assert_reusable_after_pathsend(conn: Connection) -> None:
    conn.request("GET", "/after-pathsend", probe_headers("after-pathsend", READ, *OK))
    assert conn.read_response().body == b"ok"


@pytest.mark.hypercorn_gap("Hypercorn 0.18 does not implement http.response.pathsend")
@pytest.mark.parametrize("declared", [10, 20000], ids=["file-longer-than-declared", "file-shorter-than-declared"])
def test_pathsend_never_breaks_the_framing(front: Front, tmp_path: Path, declared: int) -> None:
    """§3.5 for pathsend: a file that does not match content-length is refused (500) or cut to it.

    Never more bytes than declared; fewer, and the connection must close.  A
    pipelined second request shows what the server thinks: if it answers it
    while the first body is short (or after writing too much), the two
    responses run into each other on the wire.
    """
    assert "http.response.pathsend" in extensions_of(front, "pathsend-scope")
    path = tmp_path / "file.bin"
    path.write_bytes(b"f" * 10000)
    rid = f"pathsend-{declared}"
    head = start(200, [(b"content-length", b"%d" % declared)])
    with Connection(front) as conn:
        conn.request("GET", "/pathsend-length", probe_headers(rid, READ, head, send(pathsend(path))))
        front.wait_done(rid)
        conn.request("GET", "/after-pathsend", probe_headers("after-pathsend", READ, *OK))
        first = conn.read_response()
        if first.status == 500:
            return  # refused before anything was sent
        assert b"HTTP/1.1" not in first.body, "the next response ran into this body"
        assert len(first.body) <= declared
        if first.complete:
            assert conn.read_response().body == b"ok"  # a clean status line right after the declared length


@pytest.mark.hypercorn_gap("Hypercorn 0.18 has no ASGI 2 support: mode='asgi' calls app(scope, receive, send)")
def test_legacy_asgi2_app_is_served(legacy_front: Front) -> None:
    """100: a legacy two-callable app is served like an ASGI 3 one."""
    response = legacy_front.get("/legacy-x", "legacy")
    assert response.status_code == 200
    scope = wire.loads(response.content)["scope"]
    assert scope["type"] == "http"
    assert scope["path"] == "/legacy/legacy-x"
