"""Native Twisted: the resource tree of ``resources.py`` in a plain Site, on the chosen reactor."""

from bench.servers.common import QuietSite, arguments, install_reactor, serve


def main() -> None:
    args = arguments(__doc__ or "", apps=False, reactors=True)
    reactor = install_reactor(args.reactor)
    from bench.servers.resources import native_root

    serve(reactor, QuietSite(native_root(reactor)), args.port)


if __name__ == "__main__":
    main()
