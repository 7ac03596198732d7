"""Launch scripts and apps for the servers under test, one module per kind of server."""
