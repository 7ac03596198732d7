"""Load clients the harness runs as pinned subprocesses; each prints one JSON object."""
