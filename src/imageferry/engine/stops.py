"""When a stop takes effect inside a resumable upload.

A piece sent to the target as it arrives from the source (see
``registry/pieces.py``) is finished before a stop takes effect: a ``PATCH``
cut halfway makes the CNCF distribution registry refuse the whole session,
so the next run would start the blob anew. Pieces are sized to take about
half a second; a stop waits at most :data:`GRACE` seconds for one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from imageferry.core.cancel import CancelToken

GRACE = 5.0  # seconds a stop waits for a piece in flight before cutting it


class Stops:
    """The stop check of one resumable upload (called from the thread that sends it)."""

    def __init__(self, cancel: CancelToken) -> None:
        self._cancel = cancel
        self._holding = False
        self._seen: float | None = None  # when a stop was first seen inside a hold

    def check(self) -> None:
        """Raise Cancelled when the run is stopped, unless a held piece may still end."""
        if self._holding and self._cancel.cancelled:
            now = time.monotonic()
            self._seen = self._seen or now
            if now - self._seen < GRACE:
                return
        self._cancel.check()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """While entered, a stop waits for the piece in flight (at most GRACE seconds)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False


class Opener:
    """``open_from`` for a sink's ``put_blob_resumable`` (``open_from(n)``: the blob from
    byte ``n`` on), with the ``hold`` an upload enters while it sends a piece as it
    arrives. Sinks that never stream a piece ignore ``hold``."""

    def __init__(self, open_from: Callable[[int], Iterator[bytes]], stops: Stops) -> None:
        self._open_from = open_from
        self.hold = stops.hold

    def __call__(self, start: int) -> Iterator[bytes]:
        return self._open_from(start)
