"""WebSocket test apps mounted with ASGIResource under a StreamingSite, for tests/bridge/test_websocket*.py.

Run as a script: ``ws_server.py [--tls CERT KEY]``; serves on 127.0.0.1, an ephemeral port,
and prints ``LISTENING <port>`` once lifespan startup completed.

Mounts:

* ``/ws/<behaviour>``: the instrumented app (``probe``) with lifespan state; ``/ws/log?id=X``
  returns what connection ``X`` observed, waiting (server side, bounded) until its app call ended
  or until one of ``&until=EVENT,...`` was recorded; ``/ws/load`` reports open/peak connection counts.
* ``/small/...``: the same app with ``ws_max_message_size=1024``.
* ``/plain/...``: the same app with ``ws_per_message_deflate=False``.
* ``/fastping/...``: the same app with a 0.1 s keepalive interval and a 0.5 s timeout.
* ``/proxied/...``: the same app trusting ``X-Forwarded-*`` from 127.0.0.1.
* ``/star/echo``: a Starlette ``WebSocketEndpoint``; ``/star/closes?n=N`` its close codes.
* ``/deep/fast/items/{item_id}/ws``: a FastAPI websocket route.

SIGTERM stops listening, closes open WebSockets with 1001 (``ASGIResource.websockets.close_all``
as a drain), runs lifespan shutdown and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from bridge import http_channel_class, install_reactor

# The suite's fast-lane switches (see tests/conftest.py): uvloop, the llhttp channel.
install_reactor(loop=os.environ.get("HYBRID_TEST_LOOP"))
CHANNEL = http_channel_class(os.environ.get("HYBRID_TEST_HTTP", "twisted"))

from fastapi import FastAPI  # noqa: E402
from fastapi import WebSocket as FastAPIWebSocket  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.endpoints import WebSocketEndpoint  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket  # noqa: E402
from twisted.application.service import Service  # noqa: E402
from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.internet.interfaces import IListeningPort  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from bridge import ASGIResource, LifespanService, StreamingSite  # noqa: E402

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
LOG_WAIT = 30.0


class Record:
    """What one connection's app call observed, in order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, **event: Any) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, names: set[str]) -> None:
        async with asyncio.timeout(LOG_WAIT):
            while not any(e["event"] in names for e in self.events):
                await self._changed.wait()


RECORDS: dict[str, Record] = {}
LOAD = {"open": 0, "peak": 0}
#: The spinning app's receive() calls, and whether it is still spinning.
SPIN = {"calls": 0, "spinning": 0}


def record_for(key: str) -> Record:
    return RECORDS.setdefault(key, Record())


def summarize(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": message.get("type"), "keys": sorted(message)}
    for key in ("text", "bytes"):
        value = message.get(key)
        if value is not None:
            head = value[:64] if isinstance(value, str) else value[:64].hex()
            out[key] = {"kind": type(value).__name__, "len": len(value), "head": head}
    for key in ("code", "reason"):
        if key in message:
            out[key] = message[key]
    return out


def describe_scope(scope: dict[str, Any]) -> dict[str, Any]:
    state = scope.get("state", {})
    return {
        "type": scope["type"],
        "asgi": scope["asgi"],
        "scheme": scope["scheme"],
        "http_version": scope["http_version"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "root_path": scope["root_path"],
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "subprotocols": scope.get("subprotocols"),
        "client": scope["client"],
        "server": scope["server"],
        "has_method": "method" in scope,
        "state": {k: v for k, v in state.items() if isinstance(v, str | list)},
        "extensions": sorted(scope.get("extensions") or {}),
        "tls": (scope.get("extensions") or {}).get("tls", {}).get("tls_version"),
    }


class Probe:
    """The instrumented connection: records every receive and every send outcome."""

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        self.scope = scope
        self.query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        self.record = record_for(self.query.get("id", "anonymous"))
        self._receive = receive
        self._send = send

    async def receive(self) -> dict[str, Any]:
        message = await self._receive()
        self.record.add(event="receive", message=summarize(message))
        return message

    async def send(self, message: dict[str, Any]) -> bool:
        """Send, recording the outcome; True if it went through."""
        try:
            await self._send(message)
        except Exception as e:
            self.record.add(event="send", type=message["type"], error=type(e).__name__, oserror=isinstance(e, OSError))
            return False
        self.record.add(event="send", type=message["type"], error=None)
        return True

    async def accept(self) -> None:
        message: dict[str, Any] = {"type": "websocket.accept"}
        if "sub" in self.query:
            message["subprotocol"] = self.query["sub"]
        if "hdr" in self.query:
            message["headers"] = [(b"x-ws", b"1")]
        await self.send(message)

    async def until_disconnect(self, echo: bool) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                await self.send({"type": "websocket.send", "text": "after disconnect"})
                return
            if echo:
                reply = {"type": "websocket.send"}
                if message.get("text") is not None:
                    reply["text"] = message["text"]
                else:
                    reply["bytes"] = message["bytes"]
                await self._send(reply)


async def echo(p: Probe) -> None:
    await p.receive()
    await p.accept()
    await p.until_disconnect(echo=True)


async def close(p: Probe) -> None:
    await p.receive()
    await p.accept()
    message: dict[str, Any] = {"type": "websocket.close"}
    if "code" in p.query:
        message["code"] = int(p.query["code"])
    if "reason" in p.query:
        message["reason"] = p.query["reason"]
    await p.send(message)
    await p.receive()
    await p.send({"type": "websocket.send", "text": "after close"})
    await p.send({"type": "websocket.close"})


async def deny(p: Probe) -> None:
    await p.receive()
    await p.send({"type": "websocket.close", "code": 1008})
    await p.receive()


async def deny_custom(p: Probe) -> None:
    await p.receive()
    headers = [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]
    await p.send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await p.send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
    await p.send({"type": "websocket.http.response.body", "body": b"pe"})
    await p.send({"type": "websocket.send", "text": "after denial"})
    await p.receive()


async def raise_before(p: Probe) -> None:
    await p.receive()
    raise RuntimeError("boom before accept")


async def return_before(p: Probe) -> None:
    await p.receive()


async def raise_after(p: Probe) -> None:
    await p.receive()
    await p.accept()
    await p.receive()
    raise RuntimeError("boom after accept")


async def return_after(p: Probe) -> None:
    await p.receive()
    await p.accept()
    await p.receive()


async def send_before_accept(p: Probe) -> None:
    await p.receive()
    await p.send({"type": "websocket.send", "text": "too early"})
    await p.send({"type": "websocket.close"})


async def bad_accept(p: Probe) -> None:
    await p.receive()
    await p.send({"type": "websocket.accept", "subprotocol": "not-offered"})
    await p.send({"type": "websocket.accept", "headers": [(b"sec-websocket-protocol", b"chat")]})
    await p.send({"type": "websocket.accept", "headers": [(b"x-str", "not bytes")]})
    await p.send({"type": "websocket.bogus"})
    await p.accept()
    await p.until_disconnect(echo=True)


async def bad_send(p: Probe) -> None:
    await p.receive()
    await p.accept()
    await p.send({"type": "websocket.send", "text": "both", "bytes": b"both"})
    await p.send({"type": "websocket.send"})
    await p.send({"type": "websocket.send", "text": b"not str"})
    await p.send({"type": "websocket.send", "bytes": "not bytes"})
    await p.send({"type": "websocket.accept"})
    await p.send({"type": "websocket.send", "text": "x"})
    await p.send({"type": "websocket.send", "bytes": b"y"})
    await p.until_disconnect(echo=False)


async def bad_close(p: Probe) -> None:
    await p.receive()
    await p.accept()
    for code in (1004, 1005, 1006, 1015, 999, 2999, 5000):
        await p.send({"type": "websocket.close", "code": code})
    await p.send({"type": "websocket.close", "code": 4002, "reason": "é" * 100})
    await p.receive()


async def flood(p: Probe) -> None:
    """Send ``count`` 1 MiB messages to a client that is not reading yet.

    A send that has to wait for the transport does not finish within one
    turn of the loop; that is recorded as ``blocked`` (then the client reads).
    """
    await p.receive()
    await p.accept()
    count = int(p.query.get("count", "64"))
    blocked_at = None
    for i in range(count):
        sending = asyncio.ensure_future(p._send({"type": "websocket.send", "bytes": bytes([i % 256]) * 1024 * 1024}))
        await asyncio.sleep(0)
        if not sending.done() and blocked_at is None:
            blocked_at = i
            p.record.add(event="blocked", index=i)
        await sending
    p.record.add(event="sent", count=count, blocked_at=blocked_at)
    await p.until_disconnect(echo=False)


async def spin(p: Probe) -> None:
    """After accepting, call receive() in a loop without looking at what it returns.

    Ends only when the server cancels it (the disconnect grace after the client left).
    """
    await p.receive()
    await p.accept()
    SPIN["spinning"] += 1
    try:
        while True:
            await p._receive()
            SPIN["calls"] += 1
    finally:
        SPIN["spinning"] -= 1


async def deaf(p: Probe) -> None:
    """Accept, then read nothing until the server cancels the app (after the client left)."""
    await p.receive()
    await p.accept()
    await asyncio.Event().wait()


async def spin_status(p: Probe) -> None:
    """Answer each message with the spinning app's state, while it spins."""
    await p.receive()
    await p.accept()
    while (await p._receive())["type"] != "websocket.disconnect":
        await p._send({"type": "websocket.send", "text": json.dumps(SPIN)})


async def load(p: Probe) -> None:
    """Echo, counting concurrently open connections (for the 1,000-connection test)."""
    await p._receive()
    await p._send({"type": "websocket.accept"})
    LOAD["open"] += 1
    LOAD["peak"] = max(LOAD["peak"], LOAD["open"])
    try:
        while True:
            message = await p._receive()
            if message["type"] == "websocket.disconnect":
                return
            await p._send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    finally:
        LOAD["open"] -= 1


BEHAVIOURS = {
    f.__name__: f
    for f in (
        echo,
        close,
        deny,
        deny_custom,
        raise_before,
        return_before,
        raise_after,
        return_after,
        send_before_accept,
        bad_accept,
        bad_send,
        bad_close,
        flood,
        load,
        spin,
        spin_status,
        deaf,
    )
}


async def probe(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """The instrumented ASGI app: lifespan, websocket behaviours and the HTTP log endpoint."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await control(scope, receive, send)
    else:
        p = Probe(scope, receive, send)
        p.record.add(event="scope", scope=describe_scope(scope))
        # Mutations must not reach the next connection's copy of the state (shallow copy).
        scope["state"]["lifespan"] = "changed by a connection"
        scope["state"]["shared"].append(p.query.get("id"))
        behaviour = BEHAVIOURS[scope["path"].rpartition("/")[2]]
        try:
            await behaviour(p)
        except BaseException as e:
            p.record.add(event="end", how="raised", error=type(e).__name__)
            raise
        p.record.add(event="end", how="returned")
        if "print" in p.query:
            print(f"END {p.query['id']} {json.dumps(p.record.events[-3:])}", flush=True)


async def lifespan(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["lifespan"] = "from startup"
            scope["state"]["shared"] = []
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print("LIFESPAN SHUTDOWN", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def control(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if scope["path"].endswith("/load"):
        body = json.dumps(LOAD).encode()
    else:
        record = record_for(query["id"])
        await record.wait_for(set(query.get("until", "end").split(",")))
        body = json.dumps(record.events).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---- real frameworks ----------------------------------------------------------

CLOSES: list[int] = []
CLOSED = asyncio.Event()


class Echo(WebSocketEndpoint):
    encoding = "json"

    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept(subprotocol="json" if "json" in websocket.scope["subprotocols"] else None)

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_json(
            {
                "echo": data,
                "url": str(websocket.url_for("echo")),
                "path": websocket.url.path,
                "root_path": websocket.scope["root_path"],
            }
        )

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        global CLOSED
        CLOSES.append(close_code)
        CLOSED.set()
        CLOSED = asyncio.Event()


async def closes(request: Request) -> Response:
    async with asyncio.timeout(LOG_WAIT):
        while len(CLOSES) < int(request.query_params["n"]):
            await CLOSED.wait()
    return JSONResponse(CLOSES)


starlette_app = Starlette(routes=[WebSocketRoute("/echo", Echo, name="echo"), Route("/closes", closes)])

fastapi_app = FastAPI()


@fastapi_app.websocket("/items/{item_id}/ws")
async def item_socket(websocket: FastAPIWebSocket, item_id: int, q: str | None = None) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_json({"item_id": item_id, "q": q, "text": text, "root_path": websocket.scope["root_path"]})


# ---- the server -------------------------------------------------------------------


class Listener(Service):
    def __init__(self, description: str, site: StreamingSite) -> None:
        self.description = description
        self.site = site
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        endpoint = endpoints.serverFromString(reactor, self.description)
        endpoint.listen(self.site).addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> None:
        self.port = port
        print(f"LISTENING {port.getHost().port}", flush=True)  # type: ignore[attr-defined]

    def stopService(self) -> Any:
        super().stopService()
        return self.port.stopListening() if self.port is not None else None


def main(argv: list[str]) -> None:
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # 1,000 connections need more than 1,024 fds
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    lifespan_service = LifespanService(probe)
    main_mount = ASGIResource(probe, state=lifespan_service.state)
    root = Resource()
    root.putChild(b"ws", main_mount)
    root.putChild(b"small", ASGIResource(probe, state=lifespan_service.state, ws_max_message_size=1024))
    root.putChild(b"plain", ASGIResource(probe, state=lifespan_service.state, ws_per_message_deflate=False))
    root.putChild(
        b"fastping",
        ASGIResource(probe, state=lifespan_service.state, ws_ping_interval=0.1, ws_ping_timeout=0.5),
    )
    root.putChild(b"proxied", ASGIResource(probe, state=lifespan_service.state, trusted_proxies=["127.0.0.1"]))
    root.putChild(b"star", ASGIResource(starlette_app))
    deep = Resource()
    root.putChild(b"deep", deep)
    deep.putChild(b"fast", ASGIResource(fastapi_app))
    if argv[:1] == ["--tls"]:
        cert, key = argv[1], argv[2]
        description = f"ssl:0:interface=127.0.0.1:backlog=1024:certKey={cert}:privateKey={key}"
    else:
        description = "tcp:0:interface=127.0.0.1:backlog=1024"
    Listener(description, StreamingSite(root, channel_class=CHANNEL)).setServiceParent(lifespan_service)
    lifespan_service.add_drain(main_mount.websockets.close_all)
    lifespan_service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", lifespan_service.stopService)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
