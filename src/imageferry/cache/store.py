"""A content-addressed blob folder shared safely by threads and processes.

Layout: ``<root>/blobs/sha256/<hex>`` for verified blobs, ``<root>/tmp/`` for
blobs being written. A blob appears under its name only by an atomic rename
after its digest was checked, so no reader ever sees a half-file. The
modification time of an entry is its last use (for expiry and LRU).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imageferry.core.digest import Digest

DAY = 86400.0
GB = 1000**3
STALE_TEMP = DAY


@dataclass(frozen=True)
class CacheInfo:
    root: Path
    entries: int
    bytes: int
    oldest_use: float | None  # epoch seconds of the least recently used entry


@dataclass(frozen=True)
class PruneResult:
    removed: int
    freed: int
    kept: int
    bytes: int


class BlobCache:
    def __init__(self, root: Path, keepdays: float = 7, keepsize_gb: float = 10) -> None:
        self.root = root
        self.keepdays = keepdays
        self.keepsize = int(keepsize_gb * GB)
        self._in_use: dict[str, int] = {}
        self._lock = threading.Lock()
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    @contextmanager
    def using(self, digest: Digest) -> Iterator[None]:
        """Mark ``digest`` in use by this process: prune leaves it alone meanwhile."""
        key = str(digest)
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]

    def lookup(self, digest: Digest, size: int) -> Path | None:
        """The entry's path if present with the right size (a wrong size is discarded)."""
        path = self.path(digest)
        try:
            actual = path.stat().st_size
        except OSError:
            return None
        if actual != size:
            self.discard(digest)
            return None
        try:
            os.utime(path)  # last use, for LRU and expiry
        except OSError:
            pass
        return path

    def discard(self, digest: Digest) -> None:
        try:
            self.path(digest).unlink()
        except OSError:
            pass  # already gone, or open elsewhere (Windows): it is rechecked on every read

    def new_temp(self) -> tuple[Path, BinaryIO]:
        path = self.root / "tmp" / f"{secrets.token_hex(8)}.part"
        return path, path.open("wb")

    def commit(self, temp: Path, digest: Digest) -> None:
        """Move a verified temp file into place (atomic; a racing identical copy is fine)."""
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(temp, final)
        except OSError:
            temp.unlink(missing_ok=True)

    def _entries(self) -> list[tuple[Path, os.stat_result]]:
        out = []
        for path in (self.root / "blobs").glob("*/*"):
            try:
                out.append((path, path.stat()))
            except OSError:
                continue
        return out

    def info(self) -> CacheInfo:
        entries = self._entries()
        return CacheInfo(
            self.root,
            len(entries),
            sum(st.st_size for _, st in entries),
            min((st.st_mtime for _, st in entries), default=None),
        )

    def prune(self, now: float | None = None) -> PruneResult:
        """Drop entries unused for ``keepdays``, then least recently used ones over ``keepsize``."""
        now = time.time() if now is None else now
        for temp in (self.root / "tmp").glob("*.part"):
            try:
                if now - temp.stat().st_mtime > STALE_TEMP:
                    temp.unlink()
            except OSError:
                pass
        entries = sorted(self._entries(), key=lambda e: e[1].st_mtime)
        total = sum(st.st_size for _, st in entries)
        removed = freed = 0
        with self._lock:
            busy = set(self._in_use)
        for path, st in entries:
            too_old = now - st.st_mtime > self.keepdays * DAY
            too_big = total > self.keepsize
            if not (too_old or too_big):
                continue
            if f"{path.parent.name}:{path.name}" in busy:
                continue
            try:
                path.unlink()
            except OSError:
                continue  # open by another process (Windows): keep it
            removed += 1
            freed += st.st_size
            total -= st.st_size
        return PruneResult(removed, freed, len(entries) - removed, total)
