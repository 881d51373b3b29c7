"""sha256 of a data file taken while it is written, so that finishing need not read it again.

Workers write whole tar entries at planned offsets, in any order. The hash follows a
cursor: the entry that starts at the cursor is hashed from the bytes being written; an
entry finished further on waits and is read back (from the page cache, by whichever
worker frees the cursor) once everything before it is done. Finishing reads only what
the cursor has not reached (after a resume: the entries an earlier run wrote).

The result is the plain sha256 of the file, as ``load --verify full`` computes it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from imageferry.package.checksum import CHUNK, Progress


class RunningHash:
    """The sha256 of one data file's bytes ``[0, cursor)``, advanced as entries are written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.cursor = 0
        self._sha = hashlib.sha256()
        self._backup = self._sha
        self._waiting: dict[int, int] = {}  # offset → end of written entries past the cursor
        self._busy = False  # one thread at a time feeds the hash
        self._lock = threading.Lock()

    def claim(self, offset: int) -> bool:
        """Whether the entry about to be written at ``offset`` is hashed as it is written."""
        with self._lock:
            if self._busy or offset != self.cursor:
                return False
            self._busy = True
            self._backup = self._sha.copy()
            return True

    def feed(self, data: bytes) -> None:
        """Bytes of the claimed entry, in order (only the claiming thread calls this)."""
        self._sha.update(data)

    def abandon(self) -> None:
        """The claimed entry was not completely written: forget what of it was fed."""
        with self._lock:
            self._sha = self._backup
            self._busy = False

    def written(self, offset: int, end: int, claimed: bool) -> None:
        """The entry ``[offset, end)`` is on disk; hash whatever is now contiguous."""
        with self._lock:
            if claimed:
                self.cursor = end
            else:
                self._waiting[offset] = end
                if self._busy:
                    return  # the busy thread catches up when it is done
                self._busy = True
        self._catch_up()

    def _catch_up(self) -> None:
        while True:
            with self._lock:
                end = self._waiting.pop(self.cursor, None)
                if end is None:
                    self._busy = False
                    return
            sha = self._sha.copy()
            try:
                _read(sha, self.path, self.cursor, end, None)
            except BaseException:
                with self._lock:
                    self._busy = False  # the cursor stays: finishing reads the rest
                raise
            self._sha, self.cursor = sha, end

    def finish(self, progress: Progress | None = None) -> str:
        """The whole file's sha256: the bytes past the cursor are read now. Call it last."""
        with self._lock:
            if self._busy:
                raise RuntimeError("a data file is still being written")
            sha = self._sha.copy()
        _read(sha, self.path, self.cursor, None, progress)
        return sha.hexdigest()


def _read(
    sha: hashlib._Hash, path: Path, start: int, end: int | None, progress: Progress | None
) -> None:
    """Hash ``path``'s bytes ``[start, end)`` (to its end when ``end`` is None)."""
    with path.open("rb") as f:
        f.seek(start)
        left = end - start if end is not None else None
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            sha.update(chunk)
            if left is not None:
                left -= len(chunk)
            if progress is not None:
                progress(len(chunk))
    if left:
        raise OSError(f"{path} ended {left} bytes early")
