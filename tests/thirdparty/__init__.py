"""Third-party apps served through ``hybrid serve --mount``, against Hypercorn as the reference.

Each framework's app lives in this package; the tests start it under ``hybrid serve`` (at ``/``
and at ``/mnt``) and under Hypercorn's own command line (at ``/`` and with ``--root-path /mnt``)
and expect the same answers from both, except where a test says why not.
"""
