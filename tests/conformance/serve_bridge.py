"""Front (a): the probe through ``bridge.ASGIResource`` inside a ``bridge.StreamingSite``.

Run as ``python -m tests.conformance.serve_bridge --cert C --key K --unix PATH``.
One process, two sites, everything on 127.0.0.1 port 0, with ``--http``'s
HTTP/1.1 parser (Twisted's by default) and the loop ``HYBRID_TEST_LOOP`` names:

* the *tree* site (plain TCP, TLS with ALPN h2, and a UNIX socket): a plain
  ``Resource`` root with the probe mounted at ``/mnt`` (defaults), at
  ``/limited`` (``max_body_size``), at ``/proxied`` (``trusted_proxies``)
  and at ``/legacy`` (the probe in ASGI 2 form);
* the *root* site (plain TCP): ``ASGIResource`` as the site's root, for the
  ``root_path == ""`` case.

All of it runs under one ``LifespanService``: the listeners open only after
``lifespan.startup.complete``, and on SIGTERM they close, in-flight requests
drain, then ``lifespan.shutdown`` is sent.  Once every port listens it prints
``LISTENING {json}``; the lifespan mode comes from ``PROBE_LIFESPAN``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import bridge

bridge.install_reactor(loop=os.environ.get("HYBRID_TEST_LOOP"))

from twisted.application.service import Service  # noqa: E402 -- after install_reactor
from twisted.internet import endpoints, reactor  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.defer import Deferred, DeferredList  # noqa: E402
from twisted.internet.interfaces import IListeningPort, IProtocolFactory  # noqa: E402
from twisted.logger import globalLogBeginner, textFileLogObserver  # noqa: E402
from twisted.web.resource import Resource  # noqa: E402

from tests.conformance.probe import LegacyProbe, Probe  # noqa: E402

#: Size limit of the ``/limited`` mount.
MAX_BODY_SIZE = 1024 * 1024
#: Short, so tests of apps that ignore a disconnect need not wait long.
DISCONNECT_GRACE = 1.0


class ListeningService(Service):
    """Listen on an endpoint when started; stop listening when stopped.

    Like ``StreamServerEndpointService``, but it exposes the listening port
    through a public Deferred (we must print the port 0 resolved to).
    """

    def __init__(self, description: str, factory: IProtocolFactory) -> None:
        self.description = description
        self.factory = factory
        self.listening: Deferred[IListeningPort] = Deferred()
        self._port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        d = endpoints.serverFromString(reactor, self.description).listen(self.factory)
        d.addCallback(self._listened)
        d.chainDeferred(self.listening)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self._port = port
        return port

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        return self._port.stopListening() if self._port is not None else None


def bridge_stats(resources: list[bridge.ASGIResource]) -> dict[str, int]:
    return {
        "delayed_calls": len(reactor.getDelayedCalls()),
        "in_flight": sum(r.in_flight for r in resources),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--unix", required=True)
    parser.add_argument("--http", default="twisted", help="the HTTP/1.1 parser (bridge.http_channel_class)")
    args = parser.parse_args()
    channel_class = bridge.http_channel_class(args.http)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)

    resources: list[bridge.ASGIResource] = []
    probe = Probe(lifespan=os.environ.get("PROBE_LIFESPAN", "normal"), stats=lambda: bridge_stats(resources))
    lifespan = bridge.LifespanService(probe, startup_timeout=10, shutdown_timeout=10, drain_timeout=30)

    def mount(app: object, *, max_body_size: int | None = None, trusted: Sequence[str] = ()) -> bridge.ASGIResource:
        resource = bridge.ASGIResource(
            app,
            state=lifespan.state,
            max_body_size=max_body_size,
            disconnect_grace=DISCONNECT_GRACE,
            trusted_proxies=trusted,
        )
        resources.append(resource)
        lifespan.add_drain(resource.wait_idle)
        return resource

    tree = Resource()
    tree.putChild(b"mnt", mount(probe))
    tree.putChild(b"limited", mount(probe, max_body_size=MAX_BODY_SIZE))
    tree.putChild(b"proxied", mount(probe, trusted=["127.0.0.1"]))
    tree.putChild(b"legacy", mount(LegacyProbe(probe)))
    tree_site = bridge.StreamingSite(tree, channel_class=channel_class)
    root_site = bridge.StreamingSite(mount(probe), channel_class=channel_class)

    listeners = {
        "http": ListeningService("tcp:0:interface=127.0.0.1", tree_site),
        "https": ListeningService(f"ssl:0:interface=127.0.0.1:privateKey={args.key}:certKey={args.cert}", tree_site),
        "unix": ListeningService(f"unix:{args.unix}", tree_site),
        "root": ListeningService("tcp:0:interface=127.0.0.1", root_site),
    }
    for listener in listeners.values():
        listener.setServiceParent(lifespan)

    def announce(results: list[tuple[bool, IListeningPort]]) -> None:
        addresses = {name: port.getHost() for name, (_, port) in zip(listeners, results, strict=True)}
        ports = {name: a.port for name, a in addresses.items() if isinstance(a, IPv4Address)}
        print("LISTENING " + json.dumps({**ports, "unix": args.unix, "pid": os.getpid()}), flush=True)

    DeferredList([s.listening for s in listeners.values()], fireOnOneErrback=True).addCallback(announce)
    reactor.addSystemEventTrigger("before", "shutdown", lifespan.stopService)
    lifespan.startService()
    reactor.run()
    return 1 if lifespan.failure else 0


if __name__ == "__main__":
    sys.exit(main())
