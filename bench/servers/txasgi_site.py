"""txasgiresource: the same ASGI apps as a leaf resource of a plain Site on the asyncio reactor."""

from __future__ import annotations

from typing import Any

from bench.servers.common import QuietSite, arguments, install_reactor, serve


def bytes_query_string(app: Any) -> Any:
    """txasgiresource passes ``query_string`` as ``str`` ``""`` when a URL has no ``?``, which
    Starlette cannot decode (every such request would be a 500); give the app bytes instead."""

    async def fixed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if isinstance(scope.get("query_string"), str):
            scope["query_string"] = scope["query_string"].encode("latin-1")
        await app(scope, receive, send)

    return fixed


def main() -> None:
    args = arguments(__doc__ or "", apps=True, reactors=False)
    reactor = install_reactor("asyncio")
    from txasgiresource import ASGIResource

    from bench.servers import apps

    app = apps.raw_app if args.app == "raw" else apps.starlette_app
    serve(reactor, QuietSite(ASGIResource(bytes_query_string(app))), args.port)


if __name__ == "__main__":
    main()
