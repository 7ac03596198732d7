"""The check that a response streams: the client reads the first chunk while the app still waits.

The apps' gated streams write ``first``, then wait until the client requests ``release`` (at
most their ``GATE_TIMEOUT``) before writing ``released``. A server that buffered the response
would hold ``first`` back until the gate timed out, and the client would read ``first`` and
``timed out`` together: a failure after a bounded wait, never a hang.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

FIRST = b"first\n"


def read_at_least(chunks: Iterator[bytes], size: int) -> bytes:
    """Bytes from ``chunks`` until there are ``size`` of them (or the body ends)."""
    data = b""
    for chunk in chunks:
        data += chunk
        if len(data) >= size:
            break
    return data


def assert_streams(client: httpx.Client, stream_path: str, release_path: str) -> httpx.Response:
    """Read the first chunk, release the gate, read the rest; the response, for further checks."""
    with client.stream("GET", stream_path) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        chunks = response.iter_bytes()
        assert read_at_least(chunks, len(FIRST)) == FIRST
        assert client.get(release_path).status_code == 200
        assert b"".join(chunks) == b"released\n"
    return response
