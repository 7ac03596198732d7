"""Run ASGI apps inside Twisted Web, and Twisted resources under ASGI servers.

Everything runs on one event loop: Twisted's asyncio reactor.
"""

from bridge._aio import ReactorMismatch, install_reactor
from bridge._choices import http_channel_class
from bridge.errors import ASGIProtocolError, ClientDisconnected, LifespanFailure
from bridge.resource import ASGIResource
from bridge.reverse import TwistedResourceApp
from bridge.service import LifespanService
from bridge.site import IStreamingBodyResource, StreamingRequest, StreamingSite
from bridge.websocket import WebSockets

__all__ = [
    "ASGIProtocolError",
    "ASGIResource",
    "ClientDisconnected",
    "IStreamingBodyResource",
    "LifespanFailure",
    "LifespanService",
    "ReactorMismatch",
    "StreamingRequest",
    "StreamingSite",
    "TwistedResourceApp",
    "WebSockets",
    "http_channel_class",
    "install_reactor",
]
