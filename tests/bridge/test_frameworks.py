"""Real frameworks through the bridge, mounted below the root of a Twisted site."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, run_server, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("files") / "payload.bin"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    return path


@pytest.fixture(scope="module")
def server(payload: Path) -> Iterator[RunningServer]:
    with run_server([str(HERE / "frameworks_server.py"), str(payload)]) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def test_path_and_query_parameters_and_url_for_include_mount(client: httpx.Client) -> None:
    r = client.get("/star/items/42?q=a&q=b")
    assert r.status_code == 200
    assert r.json() == {
        "id": 42,
        "q": ["a", "b"],
        "url": f"{client.base_url}/star/items/7",
        "root_path": "/star",
    }


def test_native_resource_beside_the_mounts(client: httpx.Client) -> None:
    assert client.get("/").text == "native root"


def test_json_round_trip(client: httpx.Client) -> None:
    r = client.post("/star/json", json={"a": [1, 2, {"b": None}]})
    assert r.json() == {"got": {"a": [1, 2, {"b": None}]}}


def test_multipart_form_with_file(client: httpx.Client) -> None:
    r = client.post("/star/form", data={"name": "ada"}, files={"file": ("notes.txt", b"hello file")})
    assert r.json() == {"name": "ada", "file": "hello file", "filename": "notes.txt"}


def test_cookies_and_redirect_built_with_url_for(client: httpx.Client) -> None:
    r = client.get("/star/login")
    assert r.status_code == 303
    assert r.headers["location"] == f"{client.base_url}/star/whoami"
    assert r.headers.get_list("set-cookie")[0].startswith("session=abc123")
    assert len(r.headers.get_list("set-cookie")) == 2
    followed = client.get("/star/login", follow_redirects=True)
    assert followed.json() == {"session": "abc123", "theme": "dark"}


def test_file_response(client: httpx.Client, payload: Path) -> None:
    r = client.get("/star/download")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(payload.stat().st_size)
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(payload.read_bytes()).digest()


def test_file_response_head_has_length_and_no_body(client: httpx.Client, payload: Path) -> None:
    r = client.head("/star/download")
    assert r.headers["content-length"] == str(payload.stat().st_size)
    assert r.content == b""


def test_streaming_response_is_chunked(client: httpx.Client) -> None:
    with client.stream("GET", "/star/stream") as r:
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.headers["content-type"].startswith("text/plain")
        assert r.read() == b"0\n1\n2\n3\n4\n"


def test_background_task_runs_after_response(client: httpx.Client) -> None:
    assert client.get("/star/later?tag=t1").text == "accepted"
    wait_for(lambda: "t1" in client.get("/star/done").json(), "the background task to record t1", 10)


def test_fastapi_path_and_query_validation(client: httpx.Client) -> None:
    assert client.get("/api/v1/users/5?verbose=true").json() == {"user_id": 5, "verbose": True}
    bad = client.get("/api/v1/users/not-a-number")
    assert bad.status_code == 422


def test_fastapi_form_and_redirect_under_prefix(client: httpx.Client) -> None:
    r = client.post("/api/v1/login", data={"username": "ada", "password": "secret"})
    assert r.json() == {"username": "ada", "password_length": "6"}
    go = client.get("/api/v1/go")
    assert go.status_code == 307
    assert go.headers["location"] == f"{client.base_url}/api/v1/users/3"


def test_fastapi_openapi_served_under_prefix(client: httpx.Client) -> None:
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert "/users/{user_id}" in r.json()["paths"]


def test_unknown_route_is_the_frameworks_404(client: httpx.Client) -> None:
    assert client.get("/star/nope").status_code == 404
    assert client.get("/api/v1/nope").json() == {"detail": "Not Found"}
