"""``hybrid compare``: the same workload against each side, measured side by side.

One module per job: ``options`` (the command line), ``targets`` (which URL and ``/stats`` entry
each side is), ``probe`` (talking to ``/stats``, checking a side is served), ``runner`` (firing the
requests in alternating rounds), ``results`` (the figures), ``table`` (the terminal view),
``plot`` (the timeline image) and ``command`` (the subcommand that ties them together).
"""
