"""The data files written since their last fsync: synced before the journal claims them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from imageferry.package.nolink import open_no_link


class DirtyFiles:
    """Data files (by number) holding bytes the OS has, the disk perhaps not yet."""

    def __init__(self, path: Callable[[int], Path]) -> None:
        self._path = path
        self._dirty: set[int] = set()
        self._lock = threading.Lock()  # the set
        self._syncing = threading.Lock()  # one sync at a time, from the swap to the last fsync
        self._failed: OSError | None = None

    def add(self, *files: int) -> None:
        """Call after the bytes were written (to the OS), before they are claimed."""
        with self._lock:
            self._dirty.update(files)

    def sync(self) -> None:
        """fsync every file written since its last fsync; when this returns, every byte
        added before the call is on the disk, whichever thread synced it.

        Once an fsync fails, every later call raises that error: the OS may report a lost
        write to one fsync only, so a retry that "succeeds" would prove nothing."""
        with self._syncing:
            if self._failed is not None:
                raise self._failed
            with self._lock:
                dirty, self._dirty = self._dirty, set()
            try:
                for k in sorted(dirty):
                    with open_no_link(self._path(k), "r+b") as f:
                        os.fsync(f.fileno())
            except OSError as exc:
                self._failed = exc
                raise
            except BaseException:
                self.add(*dirty)  # not a disk error (a stop): the next sync does them
                raise
