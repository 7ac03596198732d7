"""Shape (a), as the README tells users to write it: install the reactor, then import the legacy
tree (Klein imports ``twisted.internet.reactor``) and build it, all at import time."""

import bridge

bridge.install_reactor()

from bridge import TwistedResourceApp  # noqa: E402
from tests.bridge.shapes.legacy_site import build_root  # noqa: E402

app = TwistedResourceApp(build_root())
