"""Shape (c): the tree is built by a function the adapter calls once the reactor runs."""

from twisted.web.resource import Resource

from bridge import TwistedResourceApp


def build_root() -> Resource:
    from tests.bridge.shapes.legacy_site import build_root

    return build_root()


app = TwistedResourceApp(build_root)
