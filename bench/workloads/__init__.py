"""One module per workload (W1-W5): drive a running server, return the figures of one run."""
