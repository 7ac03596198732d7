"""Native and ASGI answers compared endpoint by endpoint: status, body and headers.

Everything but ``Date`` must be equal, value for value; header order may differ (Twisted
writes its headers in insertion order, Starlette in its own).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import HybridProcess, hybrid_argv, running

#: (native path, asgi path), both under their side's prefix.
TWINS = [
    ("delayed?delay=0.01", "delayed?delay=0.01"),
    ("stream?delay=0.01", "stream?delay=0.01"),
    ("await-asyncio?delay=0.01", "await-twisted?delay=0.01"),
    ("delayed?delay=x", "delayed?delay=x"),
    ("stream?delay=99", "stream?delay=99"),
    ("delayed?delay=1&delay=2", "delayed?delay=1&delay=2"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[HybridProcess]:
    with running(hybrid_argv()) as server:
        yield server


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {name: value for name, value in response.headers.items() if name != "date"}
    return response.status_code, response.content, headers


@pytest.mark.parametrize(("native", "asgi"), TWINS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_native_and_asgi_answer_alike(server: HybridProcess, native: str, asgi: str, method: str) -> None:
    twisted_response = httpx.request(method, f"{server.url}/twisted/{native}")
    asgi_response = httpx.request(method, f"{server.url}/asgi/{asgi}")
    assert _comparable(twisted_response) == _comparable(asgi_response)
    assert "date" in twisted_response.headers
    assert "date" in asgi_response.headers
