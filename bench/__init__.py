"""The benchmark harness: every server on loopback, the same workloads, ratios from one run.

Run it with ``make bench`` (or ``make bench QUICK=1`` for a smoke run); ``python -m bench --help``
lists the knobs. Results go to ``bench/RESULTS.md`` and ``bench/results.png``.
"""
