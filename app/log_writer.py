# -*- test-case-name: tests.app.test_logging -*-
"""Access-log lines written in blocks, off the request path.

A request only appends its line to a list. The list is written out as one block when it holds
``max_bytes``, or ``interval`` seconds after its first line, or when the server stops, so a busy
server makes one write per block rather than one per request, and a quiet one has no timer
pending. Once the service stops, lines (of requests still draining) are written one by one.
The cost: a process killed without a chance to stop loses at most ``interval`` seconds of lines.

A file is opened for each block, appended to with one ``write`` and closed, so a log rotated
away (``logrotate`` without ``copytruncate``) is followed by a new file at once, with no signal to
send, and the workers of a ``--workers`` pool can share one file without splitting lines.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class BufferedLines(Service):
    """Collects lines and writes them to ``-`` (standard output) or a file, block by block.

    A service: from its stop on every line is written at once, since draining requests still
    finish after it and the reactor may stop any moment.
    """

    def __init__(self, clock: IReactorTime, target: str, interval: float = 1.0, max_bytes: int = 64 * 1024) -> None:
        self._clock = clock
        self._target = target
        self._interval = interval
        self._max_bytes = max_bytes
        self._lines: list[str] = []
        self._size = 0
        self._flush_call: IDelayedCall | None = None

    def stopService(self) -> Any:
        super().stopService()
        self.flush()

    def add(self, line: str) -> None:
        """Keep ``line`` (without its newline) for the next block."""
        self._lines.append(line)
        self._size += len(line) + 1
        if self._size >= self._max_bytes or not self.running:
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self._clock.callLater(self._interval, self.flush)

    def flush(self) -> None:
        """Write what is kept, now."""
        if self._flush_call is not None:
            if self._flush_call.active():
                self._flush_call.cancel()
            self._flush_call = None
        if not self._lines:
            return
        block = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        if self._target == "-":
            sys.stdout.write(block)
            sys.stdout.flush()
        else:
            _append(self._target, block.encode("utf-8", "replace"))


def _append(path: str, data: bytes) -> None:
    """One ``O_APPEND`` write per block (more only if the system writes part of it)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)
