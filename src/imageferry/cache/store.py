"""A content-addressed blob folder shared safely by threads and processes.

Layout: ``<root>/blobs/sha256/<hex>`` for verified blobs, ``<root>/tmp/`` for
blobs being written, ``<root>/partial/`` for blobs whose download was cut off
(continued by a later read; see :meth:`BlobCache.claim_partial`). A blob appears
under its name only by an atomic rename after its digest was checked, so no
reader ever sees a half-file. The
modification time of an entry is its last use (for expiry and LRU).

The folder is outside input: links in it are never followed. Only real
folders are entered, only regular files named as digests are read or
removed, and temp files are created exclusively (never through a link).
Nothing is created until the first blob is written, so ``info`` and
``prune`` of a missing folder leave no trace.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from imageferry.core.digest import HEX_LENGTH, Digest, is_digest_path
from imageferry.core.manifest import Descriptor

log = logging.getLogger(__name__)
DAY = 86400.0
GB = 1000**3
STALE_TEMP = DAY
MIB = 1024 * 1024
PARKED = ".parked"  # a partial file its reader left on purpose (a stop, a broken stream)
ABANDONED = 120.0  # a partial file unchanged this long lost its reader (a kill)
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


@dataclass(frozen=True)
class CacheInfo:
    """What the cache folder holds (``imageferry cache info``)."""

    root: Path
    entries: int
    bytes: int
    oldest_use: float | None  # epoch seconds of the least recently used entry


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed and what it kept."""

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
        self._told_full = False

    def path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def _folder(self, *parts: str, create: bool = False) -> Path | None:
        """``root/parts…`` if every step below the root is a real folder (no link)."""
        path = self.root
        if create:
            path.mkdir(parents=True, exist_ok=True)
        for part in parts:
            path = path / part
            if create:
                try:
                    path.mkdir(exist_ok=True)
                except OSError:
                    pass  # a link or file in the way: refused just below
            if not _is_real(path, stat.S_ISDIR):
                return None
        return path

    def _entry(self, digest: Digest) -> tuple[Path, os.stat_result | None] | None:
        """The entry's path and own status (None: missing); None if its folder is not real."""
        folder = self._folder("blobs", digest.algorithm)
        if folder is None:
            return None
        path = folder / digest.hex
        try:
            return path, os.lstat(path)
        except OSError:
            return path, None

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
        found = self._entry(digest)
        if found is None:
            return None
        path, st = found
        if st is None:
            return None
        if not _plain(st, stat.S_ISREG) or st.st_size != size:
            self.discard(digest)
            return None
        try:
            os.utime(path)  # last use, for LRU and expiry
        except OSError:
            pass
        return path

    def discard(self, digest: Digest) -> None:
        """Remove the entry (a link in its place: the link, never what it points at)."""
        folder = self._folder("blobs", digest.algorithm)
        if folder is None:
            return
        try:
            (folder / digest.hex).unlink()
        except OSError:
            pass  # already gone, or open elsewhere (Windows): it is rechecked on every read

    def new_temp(self) -> tuple[Path, BinaryIO]:
        """A new temp file, created exclusively in a real ``tmp`` folder.

        Raises OSError when the folder cannot be made or is a link.
        """
        folder = self._folder("tmp", create=True)
        if folder is None:
            raise OSError(f"cache folder {self.root / 'tmp'} is a link or not a folder")
        path = folder / f"{secrets.token_hex(8)}.part"
        return path, _create_new(path)

    def new_partial(self, digest: Digest) -> tuple[Path, BinaryIO]:
        """A new file for ``digest``'s bytes in ``partial/``: a run killed while writing it
        leaves it there for the next (after :data:`ABANDONED` seconds). Raises OSError."""
        folder = self._folder("partial", create=True)
        if folder is None:
            raise OSError(f"cache folder {self.root / 'partial'} is a link or not a folder")
        path = folder / f"{digest.algorithm}-{digest.hex}.{secrets.token_hex(8)}"
        return path, _create_new(path)

    def park(self, path: Path) -> None:
        """A partial file no one writes any more (its reader stopped): free to continue."""
        try:
            os.replace(path, path.with_name(path.name + PARKED))
        except OSError:
            pass  # then it counts as abandoned after a while

    def has_partial(self, digest: Digest) -> bool:
        """Whether a partial file of ``digest`` is free to continue."""
        return bool(self._claimable(digest))

    def _claimable(self, digest: Digest) -> list[str]:
        folder = self._folder("partial")
        if folder is None:
            return []
        prefix = f"{digest.algorithm}-{digest.hex}."
        now, names = time.time(), []
        for name in sorted(n for n in _listdir(folder) if n.startswith(prefix)):
            try:
                st = os.lstat(folder / name)
            except OSError:
                continue
            if _plain(st, stat.S_ISREG) and (
                name.endswith(PARKED) or now - st.st_mtime >= ABANDONED
            ):
                names.append(name)
        return names

    def claim_partial(self, digest: Digest) -> tuple[Path, BinaryIO, int] | None:
        """An earlier, cut-off download of ``digest``: taken over by an atomic rename (so
        one reader continues it), opened for appending, with its size. Its bytes are
        verified with the rest (the whole digest) before the entry is committed."""
        folder = self._folder("partial")
        if folder is None:
            return None
        prefix = f"{digest.algorithm}-{digest.hex}."
        for name in self._claimable(digest):  # not one another reader is writing
            mine = folder / f"{prefix}{secrets.token_hex(8)}"
            try:
                os.replace(folder / name, mine)
                flags = os.O_WRONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
                out = os.fdopen(os.open(mine, flags), "wb")
                size = out.seek(0, os.SEEK_END)
            except OSError:
                continue  # taken by another reader, or unusable
            return mine, out, size
        return None

    def cannot_store(self, desc: Descriptor, exc: OSError) -> None:
        """Log why ``desc`` is not kept: a full disk once as a warning, with the space needed."""
        if exc.errno not in _NO_SPACE:
            log.warning("cache folder %s: %s; going on without caching", self.root, exc)
            return
        try:
            free = f"{shutil.disk_usage(self.root).free / MIB:.1f} MiB free"
        except OSError:
            free = "free space unknown"
        with self._lock:
            first, self._told_full = not self._told_full, True
        log.log(
            logging.WARNING if first else logging.INFO,
            "cache folder %s is full: blob %s needs %.1f MiB there (%s); going on without "
            "caching it. Free some space there, lower the cache's keepsize in cfg.yaml or run "
            "'imageferry cache prune'",
            self.root,
            desc.digest.short,
            desc.size / MIB,
            free,
        )

    def commit(self, temp: Path, digest: Digest) -> None:
        """Move a verified temp file into place (atomic; a racing identical copy is fine)."""
        folder = self._folder("blobs", digest.algorithm, create=True)
        try:
            if folder is None:
                raise OSError("not a real folder")
            os.replace(temp, folder / digest.hex)
        except OSError:
            log.warning("cache folder %s: cannot store %s; going on", self.root, digest.short)
            temp.unlink(missing_ok=True)

    def _entries(self) -> list[tuple[Path, os.stat_result]]:
        """Every regular file named as a digest in a real algorithm folder."""
        out = []
        for algorithm in _listdir(self._folder("blobs")):
            folder = self._folder("blobs", algorithm)
            if folder is None or algorithm not in HEX_LENGTH:
                continue
            for name in _listdir(folder):
                if not is_digest_path(algorithm, name):
                    continue
                try:
                    st = os.lstat(folder / name)
                except OSError:
                    continue
                if _plain(st, stat.S_ISREG):
                    out.append((folder / name, st))
        return out

    def info(self) -> CacheInfo:
        entries = self._entries()
        return CacheInfo(
            self.root,
            len(entries),
            sum(st.st_size for _, st in entries),
            min((st.st_mtime for _, st in entries), default=None),
        )

    def _drop_stale_temps(self, now: float) -> None:
        temps = self._folder("tmp")
        partials = self._folder("partial")
        stale = [(temps, n, STALE_TEMP) for n in _listdir(temps) if n.endswith(".part")]
        stale += [(partials, n, self.keepdays * DAY) for n in _listdir(partials)]
        for folder, name, age in stale:
            if folder is None:
                continue
            try:
                st = os.lstat(folder / name)
                if _plain(st, stat.S_ISREG) and now - st.st_mtime > age:
                    os.unlink(folder / name)
            except OSError:
                pass

    def prune(self, now: float | None = None) -> PruneResult:
        """Drop entries unused for ``keepdays``, then least recently used ones over ``keepsize``."""
        now = time.time() if now is None else now
        self._drop_stale_temps(now)
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


def _plain(st: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """``st`` is of ``kind`` itself: not a link, nor a Windows junction or reparse point."""
    return kind(st.st_mode) and not getattr(st, "st_reparse_tag", 0)


def _is_real(path: Path, kind: Callable[[int], bool]) -> bool:
    try:
        return _plain(os.lstat(path), kind)
    except OSError:
        return False


def _listdir(folder: Path | None) -> list[str]:
    if folder is None:
        return []
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _create_new(path: Path) -> BinaryIO:
    """``path`` created for writing: it must not exist yet, and is never a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags, 0o644), "wb")
