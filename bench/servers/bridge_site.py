"""Our bridge: the same ASGI apps in ``bridge.ASGIResource`` inside a ``bridge.StreamingSite``.

``--reactor bridge`` is the reactor ``bridge.install_reactor()`` picks (what ``hybrid serve``
runs); ``--reactor bridge-uvloop`` is the same reactor on a uvloop loop, to measure what uvloop
would change; ``--http httptools`` puts the site on the llhttp channel (the fast lane).
"""

from bench.servers.common import arguments, install_reactor, serve


def main() -> None:
    args = arguments(__doc__ or "", apps=True, reactors=True)
    reactor = install_reactor(args.reactor)
    import bridge
    from bench.servers import apps
    from bench.servers.common import QuietSite

    app = apps.raw_app if args.app == "raw" else apps.starlette_app

    class QuietStreamingSite(bridge.StreamingSite, QuietSite):
        """StreamingSite's request handling with the access log off, like every other row."""

    channel_class = bridge.http_channel_class(args.http or "twisted")
    serve(reactor, QuietStreamingSite(bridge.ASGIResource(app), channel_class=channel_class), args.port)


if __name__ == "__main__":
    main()
