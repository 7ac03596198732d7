"""Flow control through the reverse adapter: a slow reader holds the producer back.

A 100 MiB response is read at about 1.3 MB/s for a few seconds while the server's resident
memory is sampled from ``/proc``.  Without flow control the producer would push the whole file
into the server's buffers at once; with it, the server holds about one chunk per request.
The bound is on memory, not time: the client's pace only has to be slower than loopback.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.bridge.reverse_server import hypercorn

SIZE = 100 * 1024 * 1024
PATTERN = bytes(range(256)) * 256
READ_CHUNK = 64 * 1024
SLOW_READS = 60  # one READ_CHUNK every PACE seconds: about 4 MB in 3 s
PACE = 0.05
MAX_GROWTH = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("files")
    with (directory / "big.bin").open("wb") as big:
        for _ in range(SIZE // len(PATTERN)):
            big.write(PATTERN)
    (directory / "small.bin").write_bytes(PATTERN * 16)
    return directory


def expected_sha256() -> str:
    digest = hashlib.sha256()
    for _ in range(SIZE // len(PATTERN)):
        digest.update(PATTERN)
    return digest.hexdigest()


PATHS = {
    "static.File": ("/files/big.bin", "/files/small.bin"),
    "FileSender": ("/sendfile?name=big.bin", "/sendfile?name=small.bin"),
    "push-producer": (f"/generated?size={SIZE}", f"/generated?size={len(PATTERN) * 16}"),
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("producer", list(PATHS))
def test_slow_reader_does_not_grow_server_memory(tmp_path: Path, files: Path, producer: str) -> None:
    big, small = PATHS[producer]
    with hypercorn("app", tmp_path, env={"REVERSE_FILES": str(files)}) as server:
        # Warm up the same code path, so that the baseline includes what any request costs.
        assert httpx.get(server.url + small).content == PATTERN * 16
        baseline = server.rss_bytes()
        samples = []
        digest = hashlib.sha256()
        received = 0
        with httpx.stream("GET", server.url + big, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(SIZE)
            chunks: Iterator[bytes] = response.iter_raw(READ_CHUNK)
            for chunk in chunks:
                digest.update(chunk)
                received += len(chunk)
                samples.append(server.rss_bytes())
                if len(samples) == SLOW_READS:
                    break
                time.sleep(PACE)
            for chunk in chunks:
                digest.update(chunk)
                received += len(chunk)
        samples.append(server.rss_bytes())
    assert (received, digest.hexdigest()) == (SIZE, expected_sha256())
    growth = max(samples) - baseline
    assert growth < MAX_GROWTH, f"server RSS grew by {growth / 2**20:.1f} MiB during a slow read"
    print(f"{producer}: server RSS growth {growth / 2**20:.1f} MiB over {SIZE / 2**20:.0f} MiB")
