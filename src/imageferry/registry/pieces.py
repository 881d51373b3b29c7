"""A blob's chunk stream cut into upload pieces, and how each piece is sent.

From a slow source a piece of a resumable upload is read whole before it is sent,
so a stop (or a crash) while reading never cuts a ``PATCH``: the session on the
target stays usable. From a fast source (the
rest of a piece is due within :data:`DUE`, at the pace seen in the piece and at
the pace earlier pieces to that registry moved) the piece is sent as it arrives,
without a copy or a buffer, and it grows to what recent pieces moved, source to
target, in about :data:`SPAN` (at most :data:`MOST`): every piece costs the
registry a request and a synced write, and a stop waits for the piece in flight,
so a piece is kept short in time, not in bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from imageferry.core.errors import RegistryError

DUE = 0.1  # seconds: a piece whose rest arrives within this is sent as it arrives
SPAN = 0.5  # seconds: a piece sent as it arrives holds what arrives in about so long
MOST = 128 * 1024 * 1024  # bytes: the largest piece
SAMPLE = 1024 * 1024  # bytes: read before a source's pace is judged
_MIB = 1024 * 1024


class Pieces:
    """Cuts a chunk stream into pieces of exact sizes without copying more than needed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._left = b""

    def take(self, size: int) -> Iterator[bytes]:
        while size > 0:
            chunk = self._left or next(self._it, b"")
            if not chunk:
                raise RegistryError("the blob ended before its recorded size")
            part, self._left = chunk[:size], chunk[size:]
            size -= len(part)
            yield part

    def finish(self) -> None:
        """Read to the end so the verifying stream checks the digest."""
        rest = self._left + b"".join(self._it)
        if rest:
            raise RegistryError("the blob is longer than its recorded size")


class Pace:
    """How fast the last piece to a registry moved, from its first read to the target's
    acknowledgement (one number, shared by the uploads to that registry)."""

    def __init__(self, most: int = MOST) -> None:
        self.rate: float | None = None  # bytes per second
        self.most = most  # the largest piece the registry takes

    def note(self, nbytes: int, seconds: float) -> None:
        self.rate = nbytes / max(seconds, 1e-6)

    def piece(self, size: int) -> int:
        """A streamed piece's size: what moves in about SPAN, ``size`` to :attr:`most`."""
        if self.rate is None:
            return size
        return max(size, min(self.most, int(self.rate * SPAN) // _MIB * _MIB))


def next_piece(
    pieces: Pieces,
    size: int,
    rest: int,
    grown: int,
    rate: float | None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Iterable[bytes], int, bool]:
    """The next piece as a request body, its size, and whether it is sent as it arrives.

    ``size``: a piece read whole; ``grown``: a piece sent as it arrives (both at most
    ``rest``, the bytes left of the blob); ``rate``: how fast earlier pieces to this
    registry moved, end to end (None: none has yet). Reads ahead until the rest of
    ``size`` is due within :data:`DUE` both at the pace seen in this piece (over at
    least :data:`SAMPLE`, or half the piece while ``rate`` is None: a first chunk may
    have waited in the socket's buffer) and at ``rate``; then the body is the chunks read
    so far followed by the rest as it arrives. Otherwise the piece is read whole first
    (the chunks as they came: no copy), so a stop or a crash while reading never cuts a
    request."""
    size, grown = min(size, rest), min(max(size, grown), rest)
    start = clock()
    taken = pieces.take(size)
    read: list[bytes] = []
    got = 0
    for chunk in taken:
        read.append(chunk)
        got += len(chunk)
        # no pace known yet (the first piece to that registry): judged over half the piece
        if got < (min(size, SAMPLE) if rate is not None else size // 2) or got >= size:
            continue
        left, elapsed = size - got, clock() - start
        if left * elapsed <= DUE * got and (rate is None or left <= rate * DUE):
            seen = got / max(elapsed, 1e-9)  # grows no further than this piece's pace allows
            grown = max(size, min(grown, int(seen * SPAN) // _MIB * _MIB))
            return chain(read, taken, pieces.take(grown - size)), grown, True
    return read, size, False
