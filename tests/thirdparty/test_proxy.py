"""Django behind a TLS-terminating proxy: ``hybrid serve --trusted-proxy`` and what each handler sees.

The proxy (here: the test, from 127.0.0.1) speaks plain HTTP to the server and says
``X-Forwarded-Proto: https`` and ``X-Forwarded-For``. Django's CSRF check compares the browser's
``Origin`` with the scheme and host it believes, so a form POST only passes if the server
passes the scheme on. Hypercorn's command line has no such option (its ``ProxyFixMiddleware``
is code), so there is no reference run here.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import HybridProcess, hybrid_argv, running
from tests.thirdparty.test_django import HANDLERS, TOKEN

FORWARDED = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
DEADLINE = 15.0


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    mounts = [arg for handler, target in HANDLERS.items() for arg in ("--mount", f"/{handler}={target}")]
    with running(hybrid_argv("--trusted-proxy", "127.0.0.1", *mounts)) as server:
        yield server


def test_asgi_handler_believes_the_trusted_proxy(server: HybridProcess) -> None:
    with httpx.Client(base_url=f"{server.url}/asgi", headers=FORWARDED, timeout=DEADLINE) as client:
        meta = client.get("/meta/").json()
        assert (meta["REMOTE_ADDR"], meta["scheme"]) == ("203.0.113.9", "https")
        token = TOKEN.search(client.get("/form/").text)
        assert token is not None
        origin = "https" + server.url.removeprefix("http")
        posted = client.post(
            "/form/", data={"csrfmiddlewaretoken": token.group(1), "name": "ada"}, headers={"origin": origin}
        )
        assert (posted.status_code, posted.headers["location"]) == (302, "/asgi/thanks/ada/")


def test_wsgi_handler_sees_the_proxy_itself(server: HybridProcess) -> None:
    """``--trusted-proxy`` sets ASGI scopes only (as its help says): Twisted's ``WSGIResource`` builds
    the environ from the connection, so Django under WSGI sees the proxy's address and ``http``.
    Behind a TLS proxy it then needs its own ``SECURE_PROXY_SSL_HEADER`` setting."""
    with httpx.Client(base_url=f"{server.url}/wsgi", headers=FORWARDED, timeout=DEADLINE) as client:
        meta = client.get("/meta/").json()
        assert (meta["REMOTE_ADDR"], meta["scheme"]) == ("127.0.0.1", "http")
