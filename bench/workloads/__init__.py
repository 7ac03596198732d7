"""One module per workload (W1-W6): drive a running server, return the figures of one run."""
