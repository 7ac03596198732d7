"""The README's migration walkthrough, on csvtsdb: a small Klein application from PyPI."""
