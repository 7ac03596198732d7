"""``/asgi/live``: every side's counters pushed over a WebSocket, for the dashboard.

Each message is the same JSON object ``GET /stats`` answers, sent every ``PUSH_INTERVAL``
seconds, so a page can show in-flight, completed and abandoned counts move while requests run
without polling. It is a Starlette endpoint on the asyncio side, so on a Twisted Site it goes
through ``bridge.ASGIResource``'s WebSocket support; the client only listens.
"""

from __future__ import annotations

import json

import anyio
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.stats import Stats

#: Seconds between two pushes: quick enough to watch a one-second request start and finish.
PUSH_INTERVAL = 0.25


def live_route(stats: Stats, interval: float = PUSH_INTERVAL) -> WebSocketRoute:
    """The ``/live`` WebSocket route pushing ``stats`` every ``interval`` seconds."""

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_push, websocket, stats, interval)
            # The client sends nothing; receiving is how we learn that it left.
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
            tasks.cancel_scope.cancel()

    return WebSocketRoute("/live", live, name="live")


async def _push(websocket: WebSocket, stats: Stats, interval: float) -> None:
    try:
        while True:
            await websocket.send_text(json.dumps(stats.snapshot()))
            await anyio.sleep(interval)
    except WebSocketDisconnect:
        pass  # the client left between two pushes; the receiving side ends the endpoint
