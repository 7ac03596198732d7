"""Native Twisted: the resource tree of ``resources.py`` in a plain Site, on the chosen reactor.

With ``--http``, in a ``bridge.StreamingSite`` on that parser instead (the fast lane's native rows).
"""

from bench.servers.common import QuietSite, arguments, install_reactor, serve


def main() -> None:
    args = arguments(__doc__ or "", apps=False, reactors=True)
    reactor = install_reactor(args.reactor)
    from bench.servers.resources import native_root

    if args.http is None:
        serve(reactor, QuietSite(native_root(reactor)), args.port)
        return
    import bridge

    class QuietStreamingSite(bridge.StreamingSite, QuietSite):
        """StreamingSite's request handling with the access log off, like every other row."""

    site = QuietStreamingSite(native_root(reactor), channel_class=bridge.http_channel_class(args.http))
    serve(reactor, site, args.port)


if __name__ == "__main__":
    main()
