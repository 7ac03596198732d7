"""csvtsdb with its ``GET /`` rewritten as asyncio code; ``POST /`` is still the Klein original.

The same module serves phase 1 (``hybrid serve --mount /=...:app``: Twisted owns the loop) and
phase 2 (``hypercorn``/``uvicorn ...:app``: the asyncio server owns it).  Starlette routes the
rewritten endpoints and hands everything else to the untouched Klein resource through
``TwistedResourceApp``.  The next endpoint to rewrite becomes one more ``Route``; when none is
left, the fallback ``Mount``, Klein and Twisted go.
"""

import bridge

bridge.install_reactor()  # before csvtsdb imports Klein, which imports twisted.internet.reactor

import io  # noqa: E402

import anyio  # noqa: E402
from csvtsdb import CsvTsdb  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402

from bridge import TwistedResourceApp  # noqa: E402
from tests.walkthrough.legacy import FILE, resource  # noqa: E402


def _read_tail(path: str) -> bytes:
    # CsvTsdb.get, kept exactly, quirk included: it drops the first line it reads even when it
    # starts at the beginning of the file.  Fix it once nothing depends on the old behaviour.
    try:
        with open(path, "rb") as f:
            end = f.seek(0, io.SEEK_END)
            f.seek(max(0, end - CsvTsdb.GET_BYTES))
            f.readline()
            return f.read()
    except FileNotFoundError:
        return b""


async def tail(request: Request) -> Response:
    """``GET /``, rewritten: the file is read in a worker thread, off the event loop."""
    body = await anyio.to_thread.run_sync(_read_tail, FILE)
    return Response(body, headers={"content-type": "text/html"})


legacy = TwistedResourceApp(resource)

app = Starlette(
    routes=[Route("/", tail, methods=["GET"]), Mount("/", app=legacy)],
    lifespan=legacy.lifespan,
)
