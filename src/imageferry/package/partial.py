"""A blob cut off inside a data file: continued at its offset on the rerun, not rewritten.

While a large blob is written, every :data:`CHECKPOINT` bytes the journal
records how many of its first bytes are written (``partial``; durable with the
journal's next commit, after the data file's fsync). A
rerun trusts such a record only after it re-read those bytes: the entry's tar
header must be the blob's, and the bytes are hashed again (hash states cannot
be saved), so the whole blob is still verified against its digest before the
journal calls it done. Split blobs are written whole again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from imageferry.core.digest import Digest
from imageferry.core.errors import DigestMismatchError, ImageFerryError
from imageferry.package.layout import Slot
from imageferry.package.tarfmt import BLOCK, blob_name, parse_header, read_span

CHECKPOINT = 8 * 1024 * 1024


def written_prefix(path: Path, slot: Slot, digest: str, claimed: int) -> Any | None:
    """A hasher fed the first ``claimed`` bytes of the blob's entry, or None when the
    data file does not bear the claim out (then the blob is written from its start)."""
    if slot.split or not 0 < claimed < slot.size or path.is_symlink():
        return None
    try:
        hasher = Digest.parse(digest).hasher()
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size < slot.data_offset + claimed:
                return None
            f.seek(slot.offset)
            if parse_header(f.read(BLOCK), "journal check") != (blob_name(digest), slot.size):
                return None
            f.seek(slot.data_offset)
            got = 0
            for chunk in read_span(f.read, claimed):
                hasher.update(chunk)
                got += len(chunk)
    except (OSError, ValueError, ImageFerryError):
        return None
    return hasher if got == claimed else None


def write_checkpointed(
    f: BinaryIO, chunks: Iterable[bytes], written: int, mark: Callable[[int], None] | None
) -> int:
    """Write ``chunks`` (the blob from byte ``written`` on); every CHECKPOINT bytes flush
    and ``mark`` the bytes written so far (the journal syncs them before it claims them).
    Returns the blob's bytes written in all."""
    next_mark = (written // CHECKPOINT + 1) * CHECKPOINT
    for chunk in chunks:
        f.write(chunk)
        written += len(chunk)
        if mark is not None and written >= next_mark:
            f.flush()  # in the OS before the journal may claim it
            mark(written)
            next_mark = (written // CHECKPOINT + 1) * CHECKPOINT
    return written


def hashed(chunks: Iterable[bytes], hasher: Any) -> Iterable[bytes]:
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def check_whole(digest: str, size: int, written: int, hasher: Any) -> None:
    """The continued blob, prefix and rest, must be the blob."""
    want = Digest.parse(digest)
    actual = Digest(want.algorithm, hasher.hexdigest())
    if written != size or actual != want:
        raise DigestMismatchError(
            f"continued blob {want.short}: got {actual} ({written} bytes), "
            f"expected {want} ({size} bytes)",
            expected=str(want),
            actual=str(actual),
        )
