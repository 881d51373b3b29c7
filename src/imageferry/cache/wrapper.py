"""Read-through caching of any blob source, in the style of go-containerregistry's cache.

Hits are served from the cache folder and checked against their digest as
they stream; a corrupt entry is discarded and the read fails as a temporary
error, so the engine's retry fetches it from the source. Misses stream from
the source into a temp file that is committed (fsynced, then renamed) only
after its digest matched. A cache folder that cannot take a blob (a full disk)
never fails the run: the blob streams on uncached, and the log says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from imageferry.cache.store import BlobCache
from imageferry.core.digest import verified_chunks
from imageferry.core.errors import DigestMismatchError
from imageferry.core.manifest import Descriptor, Manifest
from imageferry.core.store import BlobSource

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024


class CachedSource:
    def __init__(self, source: BlobSource, cache: BlobCache) -> None:
        self.source = source
        self.cache = cache
        self.name = source.name
        self.host = getattr(source, "host", "")

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return self.source.get_manifest(repository, reference)

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        path = self.cache.lookup(desc.digest, desc.size)
        if path is not None:
            return self._from_cache(path, desc)
        return self._fill(repository, desc)

    def open_blob_from(
        self, repository: str, desc: Descriptor, offset: int
    ) -> tuple[Iterator[bytes], int]:
        """The blob from byte ``offset`` on, and where its chunks start. A cached blob is
        read whole (it is local, and so verified whole); else the source is asked for the
        rest, which the cache does not keep (it keeps only whole, verified blobs)."""
        path = self.cache.lookup(desc.digest, desc.size)
        if path is not None:
            return self._from_cache(path, desc), 0
        opener = getattr(self.source, "open_blob_from", None)
        if opener is None or offset == 0:
            return self.open_blob(repository, desc), 0
        stream, start = opener(repository, desc, offset)
        return stream, int(start)

    def _from_cache(self, path: Path, desc: Descriptor) -> Iterator[bytes]:
        with self.cache.using(desc.digest):
            try:
                with path.open("rb") as f:
                    chunks = iter(lambda: f.read(CHUNK), b"")
                    yield from verified_chunks(chunks, desc.digest, desc.size, "cached blob")
            except (DigestMismatchError, OSError) as exc:
                self.cache.discard(desc.digest)
                log.warning("cache entry %s was corrupt and is discarded", desc.digest)
                raise DigestMismatchError(
                    f"the cached copy of blob {desc.digest.short} was corrupt ({exc}); "
                    "discarded it, fetching it from the source",
                    expected=str(desc.digest),
                    actual="(corrupt cache entry)",
                ) from None

    def _fill(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        """Stream from the source; keep a copy unless the cache folder fails (then just stream)."""
        try:
            temp, out = self.cache.new_temp()
        except OSError as exc:
            self.cache.cannot_store(desc, exc)
            yield from self._uncached(repository, desc)
            return
        keep = True
        try:
            with self.cache.using(desc.digest):
                raw = self.source.open_blob(repository, desc)
                try:
                    for chunk in verified_chunks(raw, desc.digest, desc.size, "blob"):
                        if keep:
                            keep = self._write(out, chunk, desc)
                        yield chunk
                finally:
                    close = getattr(raw, "close", None)
                    if close:
                        close()
                if keep and self._seal(out, desc):
                    self.cache.commit(temp, desc.digest)
        finally:
            _close_quietly(out)
            temp.unlink(missing_ok=True)

    def _uncached(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        raw = self.source.open_blob(repository, desc)
        try:
            yield from verified_chunks(raw, desc.digest, desc.size, "blob")
        finally:
            close = getattr(raw, "close", None)
            if close:
                close()

    def _write(self, out: BinaryIO, chunk: bytes, desc: Descriptor) -> bool:
        try:
            out.write(chunk)
            return True
        except OSError as exc:
            self.cache.cannot_store(desc, exc)
            return False

    def _seal(self, out: BinaryIO, desc: Descriptor) -> bool:
        """Flush the temp file to the disk itself, so a crash never leaves a short entry."""
        try:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            return True
        except OSError as exc:
            self.cache.cannot_store(desc, exc)
            return False

    def close(self) -> None:
        self.source.close()


def _close_quietly(out: BinaryIO) -> None:
    """Close a temp file that may still hold bytes a full disk refused (they are dropped)."""
    try:
        out.close()
    except OSError:
        pass
