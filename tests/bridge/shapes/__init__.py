"""ASGI app modules in the shapes legacy Twisted code takes, served by ``hypercorn``/``uvicorn`` CLIs."""
