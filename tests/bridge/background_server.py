"""A Starlette app whose response has a CPU-bound background task, for test_send_means_sent.

Run as a script with a directory (and, for TLS, a certificate and key file): serves ``GET /`` on
127.0.0.1 (an ephemeral port, printed as LISTENING <port>) through ``bridge.ASGIResource`` on a
``StreamingSite``, over an ``ssl:`` endpoint when given the PEM files.  The background task
computes without awaiting until ``DIR/release`` exists (or for at most ``CRUNCH_LIMIT`` seconds),
then writes ``DIR/crunch-done`` saying which ended it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bridge import install_reactor

install_reactor()

from starlette.applications import Starlette  # noqa: E402
from starlette.background import BackgroundTask  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402
from twisted.internet import endpoints, reactor  # noqa: E402

from bridge import ASGIResource, StreamingSite  # noqa: E402

DIR = Path(sys.argv[1])
CRUNCH_LIMIT = 20.0  # seconds: bounds the task if no release comes (that is the failure case)


async def crunch() -> None:
    """Compute before the first await: the loop cannot turn until this returns."""
    end = time.monotonic() + CRUNCH_LIMIT
    total = 0
    while not (DIR / "release").exists():
        total += sum(range(10_000))
        if time.monotonic() > end:
            (DIR / "crunch-done").write_text("limit")
            return
    (DIR / "crunch-done").write_text("released")


async def endpoint(request: Request) -> Response:
    return PlainTextResponse("done", background=BackgroundTask(crunch))


app = Starlette(routes=[Route("/", endpoint)])


def announce(port: object) -> None:
    print(f"LISTENING {port.getHost().port}", flush=True)  # type: ignore[attr-defined]


site = StreamingSite(ASGIResource(app))
listen = "tcp:0:interface=127.0.0.1"
if len(sys.argv) == 4:
    listen = f"ssl:0:interface=127.0.0.1:certKey={sys.argv[2]}:privateKey={sys.argv[3]}"
endpoints.serverFromString(reactor, listen).listen(site).addCallback(announce)
reactor.run()
