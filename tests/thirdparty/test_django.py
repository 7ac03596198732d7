"""Django through ``hybrid serve --mount``: its ASGI handler and its WSGI handler, at ``/`` and at ``/mnt``.

Every test runs against eight fronts: {ASGI, WSGI} x {hybrid serve, Hypercorn} x {``/``, ``/mnt``}.
The project (``tests.thirdparty.django_project``) has no ``FORCE_SCRIPT_NAME``: its URL prefix
comes from the server, ``root_path`` under ASGI and ``SCRIPT_NAME`` under WSGI, and ``reverse()``,
redirects and ``build_absolute_uri`` must all carry it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.servers import wait_for
from tests.thirdparty.django_project.views import STATIC_FILE
from tests.thirdparty.fronts import PLACEMENTS, Front, serve
from tests.thirdparty.streaming import FIRST, assert_streams, read_at_least

HANDLERS = {
    "asgi": "tests.thirdparty.django_project.asgi:application",
    "wsgi": "tests.thirdparty.django_project.wsgi:application",
}
DEADLINE = 15.0
TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(
    scope="module",
    params=[(handler, placement) for handler in HANDLERS for placement in PLACEMENTS],
    ids=lambda param: f"{param[0]}-{param[1]}",
)
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Front]]:
    handler, placement = request.param
    with serve(placement, HANDLERS[handler]) as front:
        yield handler, front


@pytest.fixture
def front(served: tuple[str, Front]) -> Front:
    return served[1]


@pytest.fixture
def handler(served: tuple[str, Front]) -> str:
    """``asgi`` or ``wsgi``: which of Django's handlers serves the project."""
    return served[0]


def reference_gap(request: pytest.FixtureRequest, reason: str) -> None:
    """Hypercorn, the reference, is known to get this wrong: the rest of the test must fail there."""
    request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture
def client(front: Front) -> Iterator[httpx.Client]:
    """A fresh client (no cookies) whose relative URLs are under the app's prefix."""
    with httpx.Client(base_url=front.url, timeout=DEADLINE) as client:
        yield client


def test_django_sees_its_mount_point(front: Front, client: httpx.Client) -> None:
    assert client.get("/").json() == {
        "path": f"{front.prefix}/",
        "path_info": "/",
        "script_name": front.prefix,
        "full_path": f"{front.prefix}/",
        "reverse_item": f"{front.prefix}/items/7/",
        "absolute_item": f"{front.url}/items/7/",
    }


def test_what_the_server_tells_django(handler: str, front: Front, client: httpx.Client) -> None:
    """Addresses, host, scheme, the raw query string, repeated headers (joined) and cookies.

    ``SERVER_PROTOCOL`` is absent under ASGI: Django's ``ASGIRequest`` does not set it.
    """
    port = front.origin.rsplit(":", 1)[1]
    headers = [("X-Twice", "1"), ("X-Twice", "2"), ("Cookie", "a=1; b=2")]
    meta = client.get("/meta/?name=J%C3%BCrgen&x=%2B+y&e=&raw=%FF", headers=headers).json()
    assert str(meta.pop("SERVER_PORT")) == port  # its type: test_server_port_is_a_string
    assert meta == {
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1" if handler == "wsgi" else None,
        "QUERY_STRING": "name=J%C3%BCrgen&x=%2B+y&e=&raw=%FF",
        "HTTP_X_TWICE": "1,2",
        "scheme": "http",
        "host": f"127.0.0.1:{port}",
        "GET": {"name": ["Jürgen"], "x": ["+ y"], "e": [""], "raw": ["\ufffd"]},
        "cookies": {"a": "1", "b": "2"},
        "content_type": "",
        "body": "",
    }


def test_server_port_is_a_string(
    request: pytest.FixtureRequest, handler: str, front: Front, client: httpx.Client
) -> None:
    """PEP 3333 makes every CGI variable a str; Django builds its own under ASGI."""
    if (handler, front.placement.server) == ("wsgi", "hypercorn"):
        reference_gap(request, "Hypercorn's WSGI wrapper copies the int port from scope['server'] into SERVER_PORT")
    assert isinstance(client.get("/meta/").json()["SERVER_PORT"], str)


def test_the_bare_prefix(handler: str, front: Front) -> None:
    """``/mnt`` without its slash (at the root, just ``/``).

    Under ASGI ``path == root_path``, so Django's ``path_info`` is empty, and APPEND_SLASH
    redirects to ``/mnt/`` (on both servers). WSGI servers hand Django an empty ``PATH_INFO``
    (Twisted) or ``/`` (Hypercorn), which Django reads as ``/`` and serves at once.
    """
    response = httpx.get(front.url, timeout=DEADLINE)
    if handler == "asgi" and front.prefix:
        assert (response.status_code, response.headers["location"]) == (301, f"{front.prefix}/")
    else:
        assert (response.status_code, response.json()["path"]) == (200, f"{front.prefix}/")


def test_latin1_header_value_passes_as_one_byte(client: httpx.Client) -> None:
    response = client.get("/latin1/")
    assert (b"X-Name", b"J\xfcrgen") in [(name.title(), value) for name, value in response.headers.raw]


def test_path_parameters_and_repeated_query_parameters(client: httpx.Client) -> None:
    assert client.get("/items/42/?q=a&q=b").json() == {"id": 42, "q": ["a", "b"]}
    assert client.get("/items/forty-two/").status_code == 404


def test_percent_encoded_path_parameter_is_decoded_once(client: httpx.Client) -> None:
    response = client.get("/greet/J%C3%BCrgen%20B%2525/")
    assert (response.status_code, response.text) == (200, "hello Jürgen B%25")


def test_append_slash_redirect_stays_under_the_prefix(front: Front, client: httpx.Client) -> None:
    """CommonMiddleware rebuilds the URL from ``request.path``, which includes the prefix."""
    response = client.get("/items/7?q=1")
    assert (response.status_code, response.headers["location"]) == (301, f"{front.prefix}/items/7/?q=1")


def test_head_has_the_headers_of_get_and_no_body(client: httpx.Client) -> None:
    get, head = client.get("/items/1/"), client.head("/items/1/")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))


def test_conditional_get_answers_304_without_a_body(
    request: pytest.FixtureRequest, handler: str, front: Front, client: httpx.Client
) -> None:
    """ConditionalGetMiddleware: an ETag on the first answer, then 304 with no body and no Content-Type."""
    etag = client.get("/items/1/").headers["etag"]
    if (handler, front.placement.server) == ("wsgi", "hypercorn"):
        reference_gap(
            request,
            "Hypercorn's WSGI wrapper starts the response with the first body chunk it iterates "
            "(hypercorn/app_wrappers.py, run_app); Django's 304 yields none, so it answers 500",
        )
    response = client.get("/items/1/", headers={"if-none-match": etag})
    assert (response.status_code, response.content) == (304, b"")
    assert response.headers["etag"] == etag
    assert "content-type" not in response.headers


def test_form_post_with_csrf_token_redirects_to_a_url_built_by_reverse(front: Front, client: httpx.Client) -> None:
    """A browser's round trip: GET the form (token and cookie), POST it with its Origin, follow the redirect.

    Django compares the Origin header with the scheme and host it sees, so this also checks
    what the server tells Django about them.
    """
    page = client.get("/form/")
    token = TOKEN.search(page.text)
    assert token is not None, page.text
    assert "csrftoken" in client.cookies
    posted = client.post(
        "/form/",
        data={"csrfmiddlewaretoken": token.group(1), "name": "ada"},
        headers={"origin": front.origin},
        follow_redirects=True,
    )
    assert [(r.status_code, r.headers["location"]) for r in posted.history] == [(302, f"{front.prefix}/thanks/ada/")]
    assert (posted.status_code, posted.text, str(posted.url)) == (200, "thanks ada", f"{front.url}/thanks/ada/")


def test_form_post_is_refused_without_its_token_or_from_another_origin(client: httpx.Client) -> None:
    token = TOKEN.search(client.get("/form/").text)
    assert token is not None
    assert client.post("/form/", data={"name": "ada"}).status_code == 403
    foreign = client.post(
        "/form/", data={"csrfmiddlewaretoken": token.group(1), "name": "ada"}, headers={"origin": "http://evil.test"}
    )
    assert foreign.status_code == 403


def test_session_lives_in_its_cookie(front: Front, client: httpx.Client) -> None:
    assert [client.get("/visits/").json()["visits"] for _ in range(3)] == [1, 2, 3]
    assert client.cookies.jar and all(cookie.path == "/" for cookie in client.cookies.jar)
    with httpx.Client(base_url=front.url, timeout=DEADLINE) as stranger:
        assert stranger.get("/visits/").json() == {"visits": 1}


def test_streaming_response_arrives_as_it_is_written(client: httpx.Client) -> None:
    response = assert_streams(client, "/stream/s1/", "/release/s1/")
    assert response.headers["transfer-encoding"] == "chunked"
    assert client.get("/outcome/s1/").json() == {"outcome": "done"}


def test_client_that_leaves_mid_stream(handler: str, front: Front, client: httpx.Client) -> None:
    """Under ASGI, Django hears ``http.disconnect`` and cancels the view's task at once, on both servers.

    Under WSGI the stream's thread sleeps on its gate and nothing can interrupt it. Once it is
    released, the servers differ: Twisted's ``WSGIResource`` sees that the request is gone at the
    next chunk and closes the iterator, so the app stops there; Hypercorn's WSGI wrapper iterates
    to the end and drops what it cannot send (its ``run_app`` does not look at the connection),
    so the app runs to completion for nobody.
    """
    with client.stream("GET", "/stream/left/") as response:
        assert read_at_least(response.iter_bytes(), len(FIRST)) == FIRST
    # Leaving the block with the body unread closes the connection.
    if handler == "wsgi":
        client.get("/release/left/")
    expected = "cancelled" if handler == "asgi" else "closed" if front.placement.server == "hybrid" else "done"
    wait_for(lambda: client.get("/outcome/left/").json()["outcome"] == expected, f"the stream to be {expected}")


def test_file_response(client: httpx.Client) -> None:
    data = STATIC_FILE.read_bytes()
    response = client.get("/static/base.css")
    assert (response.status_code, response.content) == (200, data)
    assert response.headers["content-type"] == "text/css"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["content-disposition"] == 'inline; filename="base.css"'
    head = client.head("/static/base.css")
    assert (head.headers["content-length"], head.content) == (str(len(data)), b"")


def test_async_view(handler: str, front: Front, client: httpx.Client) -> None:
    """Under ASGI the coroutine runs on the server's loop (the main thread for both servers);
    under WSGI Django runs it with ``async_to_sync`` in the request's worker thread."""
    assert client.get("/async/").json() == {"path": f"{front.prefix}/async/", "on_main_thread": handler == "asgi"}


def test_request_body_arrives_whole(client: httpx.Client) -> None:
    body = os.urandom(2 * 2**20)  # under DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), or Django answers 400
    response = client.post("/upload/", content=body, headers={"content-type": "application/octet-stream"})
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_multipart_file_upload(client: httpx.Client) -> None:
    data = os.urandom(300_000)  # several TCP reads
    response = client.post("/files/", data={"name": "ada"}, files={"file": ("blob.bin", data)})
    assert response.json() == {"name": "ada", "filename": "blob.bin", "sha256": hashlib.sha256(data).hexdigest()}


def test_chunked_request_body(handler: str, client: httpx.Client) -> None:
    """A body without Content-Length (``Transfer-Encoding: chunked``).

    Django's ASGI handler reads ``http.request`` messages until ``more_body`` is false and gets
    all of it. Its WSGI handler reads ``CONTENT_LENGTH`` bytes from ``wsgi.input``, and both
    servers take ``CONTENT_LENGTH`` from the request's header (Twisted's ``WSGIResource`` and
    Hypercorn's WSGI wrapper alike), so Django sees an empty body: WSGI apps need a length.
    """
    parts = [os.urandom(65536) for _ in range(8)]
    response = client.post("/upload/", content=iter(parts), headers={"content-type": "application/octet-stream"})
    body = b"".join(parts) if handler == "asgi" else b""
    assert response.json() == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_unknown_url_is_djangos_404(client: httpx.Client) -> None:
    response = client.get("/nowhere/")
    assert response.status_code == 404
    assert "Not Found" in response.text


def test_websocket_handshake_is_refused(handler: str, front: Front) -> None:
    """Django has no WebSocket support of its own (Channels adds it); the handshake must fail cleanly.

    Under ASGI, Django raises on the ``websocket`` scope before accepting, and both servers answer 500.
    Under WSGI the servers differ, both correctly (a server may ignore ``Upgrade``, RFC 9110 7.8):
    Twisted's ``WSGIResource`` serves the request as the plain GET it also is, so Django answers its
    page with 200 and no upgrade; Hypercorn refuses WebSockets to WSGI apps with 403.
    """
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{front.ws_url}/", open_timeout=DEADLINE).close()
    expected = {"asgi": 500, "wsgi": 200 if front.placement.server == "hybrid" else 403}[handler]
    assert refused.value.response.status_code == expected
