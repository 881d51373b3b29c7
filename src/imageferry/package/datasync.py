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
        self._lock = threading.Lock()

    def add(self, *files: int) -> None:
        """Call after the bytes were written (to the OS), before they are claimed."""
        with self._lock:
            self._dirty.update(files)

    def sync(self) -> None:
        """fsync every file written since its last fsync. Raises OSError (they stay dirty)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        try:
            for k in sorted(dirty):
                with open_no_link(self._path(k), "r+b") as f:
                    os.fsync(f.fileno())
        except BaseException:
            self.add(*dirty)
            raise
