"""``--mount`` of WSGI apps: a real Flask app at a sub-path and at the root, and telling kinds apart.

The Flask app (``tests.app.wsgi_mountables``) runs in the server subprocess through Twisted's
``WSGIResource``; the assertions are on what Flask saw and built (``SCRIPT_NAME``, ``url_for``)
and on what a real client receives.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette

from app.mounts import Kind, detect
from tests.app import wsgi_mountables
from tests.conftest import REPO, HybridProcess, hybrid_argv, running

MOUNTABLES = "tests.app.wsgi_mountables"


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    """The hybrid site with Flask at /flask and one object of each kind at /wsgi-fn, /asgi-fn, /resource."""
    mounts = {"/flask": "flask_app", "/wsgi-fn": "wsgi_function", "/asgi-fn": "asgi_function", "/resource": "resource"}
    args = [arg for prefix, name in mounts.items() for arg in ("--mount", f"{prefix}={MOUNTABLES}:{name}")]
    with running(hybrid_argv(*args)) as server:
        yield server


def test_flask_sees_its_mount_point(server: HybridProcess) -> None:
    """SCRIPT_NAME is the prefix and PATH_INFO the rest, so Flask's url_for builds URLs under /flask."""
    response = httpx.get(f"{server.url}/flask/")
    assert response.status_code == 200
    assert response.json() == {
        "script_name": "/flask",
        "path_info": "/",
        "script_root": "/flask",
        "path": "/",
        "url_for_greet": "/flask/greet/ada",
        "url_for_greet_external": f"{server.url}/flask/greet/ada",
    }


def test_flask_routes(server: HybridProcess) -> None:
    assert httpx.get(f"{server.url}/flask/greet/ada").text == "hello ada"
    assert httpx.get(f"{server.url}/flask/nowhere").status_code == 404
    bare = httpx.get(f"{server.url}/flask")
    assert (bare.status_code, bare.headers["location"]) == (308, f"{server.url}/flask/")


def test_flask_form_post(server: HybridProcess) -> None:
    """A urlencoded form reaches Flask through the site; its redirect points under the prefix."""
    response = httpx.post(f"{server.url}/flask/form", data={"name": "ada", "age": "36"})
    assert (response.status_code, response.text) == (200, "ada is 36")
    redirected = httpx.post(f"{server.url}/flask/form?redirect=1", data={"name": "ada", "age": "36"})
    assert (redirected.status_code, redirected.headers["location"]) == (302, "/flask/greet/ada")


def test_flask_multipart_upload(server: HybridProcess) -> None:
    """A larger body (several TCP reads) arrives whole in the WSGI thread."""
    data = bytes(range(256)) * 2048
    response = httpx.post(f"{server.url}/flask/upload", data={"name": "blob"}, files={"file": ("blob.bin", data)})
    assert response.json() == {"name": "blob", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_flask_streamed_response(server: HybridProcess) -> None:
    """A generator response leaves chunked, one chunk per item the app yields."""
    with httpx.Client() as client, client.stream("GET", f"{server.url}/flask/count/5") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == b"".join(b"line %d\n" % i for i in range(5))
    assert len(chunks) > 1


@pytest.mark.parametrize(
    ("prefix", "answer"),
    [
        ("/wsgi-fn/a/b", "wsgi at /wsgi-fn/a/b"),
        ("/asgi-fn/a/b", "asgi at /asgi-fn/a/b"),
        ("/resource/a/b", "resource at /resource/a/b"),
    ],
)
def test_each_kind_is_served_its_way(server: HybridProcess, prefix: str, answer: str) -> None:
    response = httpx.get(f"{server.url}{prefix}")
    assert (response.status_code, response.text) == (200, answer)


def test_the_site_still_serves_its_wsgi_side(server: HybridProcess) -> None:
    """Mounted WSGI apps share the reactor's thread pool with /wsgi; both work."""
    response = httpx.get(f"{server.url}/wsgi/delayed?delay=0")
    assert response.status_code == 200


def test_flask_at_the_root() -> None:
    """``--mount /=`` serves Flask for every path, with an empty SCRIPT_NAME."""
    with running(hybrid_argv("--mount", f"/={MOUNTABLES}:flask_app")) as server:
        info = httpx.get(f"{server.url}/").json()
        assert (info["script_name"], info["path_info"], info["url_for_greet"]) == ("", "/", "/greet/ada")
        assert httpx.get(f"{server.url}/greet/bob").text == "hello bob"


@pytest.mark.parametrize(
    ("target", "kind"),
    [
        (wsgi_mountables.flask_app, Kind.WSGI),
        (wsgi_mountables.wsgi_function, Kind.WSGI),
        (wsgi_mountables.WSGIClass(), Kind.WSGI),
        (wsgi_mountables.asgi_function, Kind.ASGI),
        (Starlette(), Kind.ASGI),
        (wsgi_mountables.resource, Kind.RESOURCE),
        (wsgi_mountables.three_plain_parameters, None),
        (wsgi_mountables.two_async_parameters, None),
        (wsgi_mountables.WSGIClass, None),
        (wsgi_mountables.a_string, None),
    ],
    ids=lambda value: value.name if isinstance(value, Kind) else None,
)
def test_detect(target: object, kind: Kind | None) -> None:
    assert detect(target) is kind


@pytest.mark.parametrize(
    ("name", "described"),
    [
        ("three_plain_parameters", "is a callable taking (a, b, c), which is neither"),
        ("two_async_parameters", "is an async callable taking (environ, start_response), which is neither"),
        ("WSGIClass", f"is the class {MOUNTABLES}.WSGIClass (mount an instance?), which is neither"),
        ("a_string", "is an object of type builtins.str, which is neither"),
    ],
)
def test_wrong_object_is_one_clear_error(name: str, described: str) -> None:
    """The server refuses to start, names the object and says what it is and what would do."""
    result = subprocess.run(
        hybrid_argv("--mount", f"/x={MOUNTABLES}:{name}"), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"hybrid serve: error: --mount /x={MOUNTABLES}:{name}: {MOUNTABLES}:{name} {described} a Twisted "
        "IResource, an ASGI 3 application (an async callable taking scope, receive, send) nor a WSGI "
        "application (a plain callable taking environ, start_response)\n"
    )


def test_wsgi_threads_must_be_a_positive_count() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--wsgi-threads", "0"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--wsgi-threads: '0' is not a number of threads (a whole number, at least 1)" in result.stderr
