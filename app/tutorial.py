"""What the tutorial endpoints answer, shared by every side.

Each side (native Twisted, Starlette through the bridge, and any side added later) builds its
responses from these constants and functions only, so bodies, status codes and error texts are
byte-identical by construction and a comparison between sides measures the concurrency model,
not the wording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: The body of the Twisted Web tutorial "Asynchronous Responses".
BODY = b"<html><body>Sorry to keep you waiting.</body></html>"

#: Content types, spelled out on every side: Twisted's implicit default (``text/html``) and
#: Starlette's (``text/html; charset=utf-8``) differ, and an implicit header is not comparable.
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

#: The tutorial's delay, used when neither ``--delay`` nor ``?delay=`` says otherwise.
DEFAULT_DELAY = 5.0
MAX_DELAY = 60.0

#: A query parameter (``?delay=0&warmup=1``) that leaves a request out of ``/stats``: the
#: dashboard's unmeasured warm-up requests are served as usual but counted in no run.
WARMUP = "warmup"

#: How many timed chunks the streaming variant writes after its opening chunk.
STREAM_STEPS = 5

# Digits with an optional fraction, nothing else: float() would also accept "nan", "inf",
# "1e3", "1_0" and surrounding whitespace, none of which a person means by a delay.
_DELAY_SYNTAX = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)")


class DelayError(ValueError):
    """A ``delay`` query parameter that is not a number of seconds in range.

    Its message is the one-line plain-text body of the 400 response.
    """


def parse_delay(values: Sequence[str], default: float) -> float:
    """Return the delay asked for by the ``delay`` query parameter's values, or ``default``.

    Raises ``DelayError`` for a repeated parameter (sides would disagree on which one wins),
    a value that is not a plain decimal number, or one outside 0..MAX_DELAY.
    """
    if not values:
        return default
    if len(values) > 1:
        raise DelayError("delay must be given at most once\n")
    value = values[0]
    if _DELAY_SYNTAX.fullmatch(value) is None or float(value) > MAX_DELAY:
        raise DelayError(f"delay must be a number of seconds between 0 and {MAX_DELAY:g}\n")
    return float(value)


def stream_parts() -> list[bytes]:
    """The chunks of the streaming variant: an opening chunk sent at once, then one per step.

    Concatenated they form a complete HTML page; the last part closes it.
    """
    opening = b"<html><body>\n"
    steps = [f"<p>Chunk {i} of {STREAM_STEPS}</p>\n".encode() for i in range(1, STREAM_STEPS + 1)]
    steps[-1] += b"<p>Sorry to keep you waiting.</p></body></html>\n"
    return [opening, *steps]
