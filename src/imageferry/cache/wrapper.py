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
        if opener is None or offset == 0 or self.cache.has_partial(desc.digest):
            return self.open_blob(repository, desc), 0  # local bytes first, then the rest
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
        """Stream from the source, keeping a copy unless the cache folder fails (then just
        stream). A copy cut off (a broken stream, a stop, a kill) stays in ``partial/``; the
        next read of the blob serves those bytes from disk and asks the source for the rest."""
        try:
            claimed = self.cache.claim_partial(desc.digest)
            path, out, have = claimed or (*self.cache.new_partial(desc.digest), 0)
        except OSError as exc:
            self.cache.cannot_store(desc, exc)
            yield from self._uncached(repository, desc)
            return
        if have:
            log.info("cache: continuing blob %s at byte %d", desc.digest.short, have)
        state = {"keep": True}
        done = False
        try:
            with self.cache.using(desc.digest):
                whole = self._prefix_then_rest(path, have, out, repository, desc, state)
                yield from verified_chunks(whole, desc.digest, desc.size, "blob")
                done = True
                if state["keep"] and self._seal(out, desc):
                    self.cache.commit(path, desc.digest)
        except DigestMismatchError:
            state["keep"] = False  # wrong bytes, ours or the source's: nothing is kept
            raise
        finally:
            _close_quietly(out)
            if done or not state["keep"]:
                path.unlink(missing_ok=True)
            else:
                self.cache.park(path)

    def _prefix_then_rest(
        self,
        path: Path,
        have: int,
        out: BinaryIO,
        repository: str,
        desc: Descriptor,
        state: dict[str, bool],
    ) -> Iterator[bytes]:
        """The blob: the ``have`` bytes already in ``path``, then the source's rest
        (appended to ``out`` as it comes)."""
        if have:
            with path.open("rb") as f:
                yield from _span(f, have)
        raw, start = self._open_source(repository, desc, have)
        try:
            for chunk in _skip(raw, have - start):
                if state["keep"]:
                    state["keep"] = self._write(out, chunk, desc)
                yield chunk
        finally:
            close = getattr(raw, "close", None)
            if close:
                close()

    def _open_source(
        self, repository: str, desc: Descriptor, offset: int
    ) -> tuple[Iterator[bytes], int]:
        opener = getattr(self.source, "open_blob_from", None)
        if offset == 0 or opener is None:
            return self.source.open_blob(repository, desc), 0
        stream, start = opener(repository, desc, offset)
        return stream, int(start)

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


def _span(f: BinaryIO, size: int) -> Iterator[bytes]:
    while size > 0:
        chunk = f.read(min(CHUNK, size))
        if not chunk:
            raise DigestMismatchError(
                "a partial cache entry ended early",
                expected="(its recorded size)",
                actual="(shorter)",
            )
        size -= len(chunk)
        yield chunk


def _skip(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes (a source that ignored Range)."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0


def _close_quietly(out: BinaryIO) -> None:
    """Close a temp file that may still hold bytes a full disk refused (they are dropped)."""
    try:
        out.close()
    except OSError:
        pass
