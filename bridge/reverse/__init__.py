"""The reverse adapter: Twisted resource trees served as ASGI 3 apps (see ``_app``)."""

from bridge.reverse._app import DEFAULT_MAX_BODY_SIZE, TwistedResourceApp

__all__ = ["DEFAULT_MAX_BODY_SIZE", "TwistedResourceApp"]
