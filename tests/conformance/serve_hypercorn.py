"""Front (b), the reference: the same probe served by Hypercorn.

Run as ``python -m tests.conformance.serve_hypercorn --root-path /mnt [--cert C --key K] [--unix PATH]
[--proxy-fix] [--legacy]``.  Hypercorn runs in this process (no worker
subprocess), so the pid the tests measure is the server.  We bind the TCP
sockets ourselves on port 0 without listening and hand them over as
``fd://``: asyncio only listens once Hypercorn's lifespan startup is done,
like the bridge.  ``LISTENING {json}`` is printed when Hypercorn reports its
last socket serving.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.middleware import ProxyFixMiddleware

from tests.conformance.probe import LegacyProbe, Probe


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root-path", default="")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--unix")
    parser.add_argument("--proxy-fix", action="store_true", help="trust one proxy hop (ProxyFixMiddleware)")
    parser.add_argument("--legacy", action="store_true", help="serve the probe in ASGI 2 form")
    args = parser.parse_args()

    probe = Probe(lifespan=os.environ.get("PROBE_LIFESPAN", "normal"))
    app: Any = LegacyProbe(probe) if args.legacy else probe
    if args.proxy_fix:
        app = ProxyFixMiddleware(app, mode="legacy", trusted_hops=1)

    plain, secure = bound_socket(), bound_socket()
    ports = {"http": plain.getsockname()[1]}
    config = Config()
    config.root_path = args.root_path
    config.errorlog = "-"
    config.accesslog = None
    config.graceful_timeout = 30
    config.include_server_header = False
    config.insecure_bind = [f"fd://{plain.fileno()}"]
    if args.unix:
        config.insecure_bind.append(f"unix:{args.unix}")
    if args.cert:
        config.certfile, config.keyfile = args.cert, args.key
        config.bind = [f"fd://{secure.fileno()}"]
        ports["https"] = secure.getsockname()[1]
    else:
        config.bind = config.insecure_bind
    expected = len(config.bind) + (len(config.insecure_bind) if args.cert else 0)
    announcement = "LISTENING " + json.dumps({**ports, "unix": args.unix, "pid": os.getpid()})

    class AnnouncingLogger(Logger):
        """Hypercorn logs "Running on ..." once per socket it serves; announce after the last."""

        serving = 0

        async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
            await super().info(message, *args, **kwargs)
            if message.startswith("Running on"):
                AnnouncingLogger.serving += 1
                if AnnouncingLogger.serving == expected:
                    print(announcement, flush=True)

    config.logger_class = AnnouncingLogger

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait, mode="asgi")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
