"""An object for ``hybrid serve --mount`` in the compare tests: a prefix that serves nothing."""

from twisted.web.resource import Resource

#: Mounted over ``/asgi``, it leaves ``/stats`` with an ``asgi`` entry but no side behind it.
nothing = Resource()
