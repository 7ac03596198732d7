"""``twistd hybrid``: the ``hybrid serve`` service as a twistd plugin.

twistd only finds plugins in ``twisted/plugins/`` directories on ``sys.path``, and this
repository has none (``app/`` holds all application code), so ``install_dropin`` writes a
two-line module into the ``twisted/plugins`` directory of the Twisted in use that imports
``hybrid`` from here. ``make venv`` runs it (``hybrid install-plugin``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.application.service import IService, IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

from app.options import ServeOptions, add_serve_arguments

DROPIN_NAME = "hybrid_app.py"
_DROPIN = '''"""twistd plugin `hybrid`, written by `hybrid install-plugin`; the code is app/twistd_plugin.py."""

from app.twistd_plugin import hybrid

__all__ = ["hybrid"]
'''


class Options(usage.Options):
    """The ``serve`` options, parsed by the same argparse declarations as ``hybrid serve``."""

    serve: ServeOptions

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        parser = argparse.ArgumentParser(
            prog="twistd hybrid", description="Serve the hybrid site (like `hybrid serve`)."
        )
        add_serve_arguments(parser)
        self.serve = ServeOptions.from_namespace(parser.parse_args(options))


@implementer(IServiceMaker, IPlugin)
class HybridServiceMaker:
    """Makes the ``hybrid serve`` service for twistd."""

    tapname = "hybrid"
    description = "The hybrid Twisted + asyncio site (same options as `hybrid serve`)."
    options = Options

    def makeService(self, options: Options) -> IService:
        # twistd imports no reactor before building the service unless --reactor was given;
        # --reactor=asyncio installs the same one, and the bridge refuses any other.
        from bridge import ReactorMismatch, install_reactor
        from bridge._choices import NotInstalled

        try:
            install_reactor(loop=options.serve.loop)
        except (ReactorMismatch, NotInstalled) as e:
            raise SystemExit(f"twistd hybrid: error: {e}") from None
        from twisted.internet import reactor

        from app.serve import ConfigError, make_service

        if options.serve.log_level != "info":
            _filter_twistd_log(options.serve.log_level)

        try:
            return make_service(options.serve, reactor, reactor.stop)
        except ConfigError as e:
            raise SystemExit(f"twistd hybrid: error: {e}") from None


def _filter_twistd_log(level: str) -> None:
    """Leave events below ``level`` out of twistd's own log.

    twistd begins logging after the service is built, with the observer its options chose
    (``--logfile``, ``--logger``), so the level is applied by wrapping whatever observers it
    begins logging to, as ``hybrid serve`` wraps its own (``app.logs.server_log_observer``).
    """
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner

    begin = globalLogBeginner.beginLoggingTo
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))

    def filtered(observers: Any, *args: Any, **kwargs: Any) -> None:
        begin([FilteringLogObserver(observer, [predicate]) for observer in observers], *args, **kwargs)

    globalLogBeginner.beginLoggingTo = filtered  # type: ignore[method-assign]


hybrid = HybridServiceMaker()


def install_dropin(directory: Path | None = None) -> Path:
    """Write the plugin module into ``directory`` (default: Twisted's own plugins directory)."""
    if directory is None:
        import twisted.plugins

        directory = Path(twisted.plugins.__file__).parent
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DROPIN_NAME
    path.write_text(_DROPIN)
    return path
