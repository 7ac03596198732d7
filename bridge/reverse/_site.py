"""A ``Site`` whose resource traversal starts below the ASGI ``root_path``.

When an ASGI router mounts the adapter at ``/legacy``, the request path still includes
``/legacy`` (ASGI puts ``root_path`` inside ``path``).  Moving those segments from ``postpath``
to ``prepath`` before traversal makes the tree behave as if it were a child resource at
``/legacy`` of a native Site: children resolve from the tree's root, and ``prePathURL()``,
``childLink()``, relative redirects and session cookie names (``sitepath``) include the prefix.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import IResource
from twisted.web.server import Site


class RootPathSite(Site):
    """A ``Site`` for requests whose channel knows their ``root_path`` segments."""

    def getResourceFor(self, request: Any) -> IResource:
        root: list[bytes] = request.channel.rootSegments
        if request.postpath[: len(root)] == root:
            del request.postpath[: len(root)]
        request.prepath = list(root)
        resource: IResource = super().getResourceFor(request)
        return resource
