"""Several third-party apps in one ``hybrid serve``, as a migration ends up: each at its own prefix.

Quart replaces the root (``--mount /=``), Falcon and Django's ASGI handler sit beside it, and the
same Django project through WSGI sits two levels down. Each must see only its own mount point
and its own lifespan, and one SIGTERM must run every app's shutdown. Hypercorn serves one app
per process, so there is no reference here: each app's answers are the ones the single-app
tests already compare with Hypercorn.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import HybridProcess, hybrid_argv, running
from tests.thirdparty.quart_app import AFTER_SERVING

MOUNTS = {
    "/": "tests.thirdparty.quart_app:app",
    "/falcon": "tests.thirdparty.falcon_app:app",
    "/django": "tests.thirdparty.django_project.asgi:application",
    "/legacy/django": "tests.thirdparty.django_project.wsgi:application",
}
DEADLINE = 15.0


def mount_args() -> list[str]:
    return [arg for prefix, target in MOUNTS.items() for arg in ("--mount", f"{prefix}={target}")]


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    with running(hybrid_argv(*mount_args())) as server:
        yield server


@pytest.fixture
def client(server: HybridProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as client:
        yield client


def test_each_app_sees_its_own_mount_point(client: httpx.Client) -> None:
    assert client.get("/").json()["url_for_item"] == "/items/7"
    assert client.get("/falcon/where").json()["root_path"] == "/falcon"
    assert client.get("/django/").json()["reverse_item"] == "/django/items/7/"
    legacy = client.get("/legacy/django/").json()
    assert (legacy["script_name"], legacy["reverse_item"]) == ("/legacy/django", "/legacy/django/items/7/")


def test_each_app_has_its_own_lifespan(client: httpx.Client) -> None:
    """Quart's startup ran; Falcon's wrote its own lifespan state, which is not Quart's or Django's."""
    assert client.get("/").json()["started_by"] == "before_serving"
    assert client.get("/falcon/where").json()["started_by"] == "process_startup"


def test_prefixes_do_not_leak_into_neighbours(client: httpx.Client) -> None:
    """``/items/3`` is Quart's (the root); Falcon's and Django's live under their prefixes."""
    assert client.get("/items/3").json() == {"id": 3, "q": []}
    assert client.get("/falcon/items/3").json() == {"id": 3, "q": []}
    assert client.get("/django/items/3/").json() == {"id": 3, "q": []}
    assert client.get("/django/where").status_code == 404  # Django's 404, not Falcon's route


def test_websockets_of_two_apps(server: HybridProcess) -> None:
    base = "ws" + server.url.removeprefix("http")
    with connect(f"{base}/ws/ada", open_timeout=DEADLINE) as quart, connect(f"{base}/falcon/shout") as falcon:
        assert quart.recv(timeout=DEADLINE) == '{"path": "/ws/ada", "url_for_index": "/"}'
        falcon.send("hi")
        quart.send("hi")
        assert (falcon.recv(timeout=DEADLINE), quart.recv(timeout=DEADLINE)) == ("HI", "ada: hi")


def test_sigterm_stops_every_app() -> None:
    with running(hybrid_argv(*mount_args())) as server:
        assert httpx.get(f"{server.url}/falcon/where", timeout=DEADLINE).status_code == 200
        assert server.stop() == 0
        assert AFTER_SERVING in server.log()
