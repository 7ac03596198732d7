"""JSON with bytes, shared by the tests and the probe app they script.

Scripts travel to the app in a request header and records travel back in a
response body, both as JSON.  ASGI is full of ``bytes`` and cares about the
difference between ``bytes`` and ``str``, so bytes are tagged rather than
guessed: ``{"$b": "<latin-1 text>"}``.  Anything else JSON cannot carry
(bytearray, memoryview, ...) is tagged with its type name, so a test can see
that the server handed the app the wrong type instead of having it quietly
converted.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def tag(value: Any) -> Any:
    """Turn ``value`` into plain JSON data, tagging bytes and foreign types."""
    if type(value) is bytes:
        return {"$b": value.decode("latin-1")}
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, dict):
        return {str(k): tag(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return [tag(v) for v in value]
    return {"$type": type(value).__name__, "$repr": repr(value)}


def untag(value: Any) -> Any:
    """Inverse of ``tag`` for bytes; foreign-type tags stay dicts (never bytes)."""
    if isinstance(value, dict):
        if set(value) == {"$b"}:
            return value["$b"].encode("latin-1")
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    return json.dumps(tag(value)).encode()


def loads(data: bytes | str) -> Any:
    return untag(json.loads(data))


def encode_header(value: Any) -> str:
    """Pack a script into one header value (URL-safe base64 of the JSON)."""
    return base64.urlsafe_b64encode(dumps(value)).decode("ascii")


def decode_header(value: bytes) -> Any:
    return loads(base64.urlsafe_b64decode(value))
