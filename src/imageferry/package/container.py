"""What a data file really is, decided by its bytes, and reading compressed tars as streams.

Meta files say how their data files are compressed, but image-transmit writes
``compressor: gzip`` beside plain tar files, and a meta file may have been
edited. So the container is sniffed from the first bytes (:func:`sniff`) and
the meta's word is only compared with it.

A whole-stream compressed tar cannot be read at an offset. Rather than
unpacking a copy (a second copy on disk, left behind on Ctrl-C), blobs are
read by decompressing from the start of the stream: :class:`StreamCursors`
keeps a few paused decompressing readers per file and serves a request at
uncompressed offset X from the idle reader furthest along but not past X (or a
new one from the start). Blobs requested in stream order cost one pass in
all; out-of-order requests cost a re-read from the start, bounded by the file
size. Memory stays at a few decompressor windows per file, disk at zero.
"""

from __future__ import annotations

import gzip
import lzma
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from imageferry.core.errors import PackageError

TAR = "tar"
GZIP = "gzip"
ZSTD = "zstd"
XZ = "xz"
LZ4 = "lz4"
SQUASHFS = "squashfs"
COMPRESSED = (GZIP, ZSTD, XZ)
_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"\x28\xb5\x2f\xfd", ZSTD),
    (b"\xfd\x37\x7a\x58\x5a\x00", XZ),
    (b"\x04\x22\x4d\x18", LZ4),
    (b"hsqs", SQUASHFS),
)
CHUNK = 1024 * 1024
IDLE_PER_FILE = 2
# Everything a damaged compressed stream or a vanished file can raise while read.
STREAM_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError)


def sniff(path: Path) -> str:
    """``tar``, ``gzip``, ``zstd``, ``xz``, ``lz4`` or ``squashfs`` by magic bytes.

    Raises :class:`PackageError` for anything else (or a file that cannot be read).
    """
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise PackageError(f"cannot read data file {path}: {exc.strerror or exc}") from None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) == 512 and (head[257:262] == b"ustar" or head == bytes(512)):
        return TAR  # a header, or the end-of-archive blocks of a tar with no entry
    raise PackageError(
        f"data file {path} is neither a tar file nor gzip / zstd / xz compressed: "
        "it is damaged or not part of this package; copy it again"
    )


def open_stream(path: Path, kind: str) -> BinaryIO:
    """A reader of the uncompressed bytes of ``path`` (a ``kind`` container)."""
    if kind == GZIP:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind == XZ:
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if kind == ZSTD:
        raw = path.open("rb")
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        except zstandard.ZstdError:
            raw.close()
            raise
        return reader  # type: ignore[return-value]
    return path.open("rb")


def read_exactly(f: BinaryIO, size: int) -> bytes:
    """``size`` bytes (fewer only at the end of the data)."""
    parts, left = [], size
    while left:
        data = f.read(left)
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def skip(f: BinaryIO, size: int) -> int:
    """Read and drop ``size`` bytes; returns how many there were."""
    done = 0
    while done < size:
        data = f.read(min(CHUNK, size - done))
        if not data:
            break
        done += len(data)
    return done


class _Cursor:
    def __init__(self, path: Path, kind: str) -> None:
        self.stream = open_stream(path, kind)
        self.at = 0

    def advance(self, to: int) -> bool:
        self.at += skip(self.stream, to - self.at)
        return self.at == to


class StreamCursors:
    """Thread-safe reads of byte ranges of one compressed data file, decompressing forward.

    A cursor is owned by one read while it runs (no lock is held while the
    caller consumes chunks); idle ones wait in a small pool for the next read
    at or beyond their position. ``close()`` closes the idle ones; a read in
    progress closes its own cursor when it ends.
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._idle: list[_Cursor] = []
        self._lock = threading.Lock()
        self._closed = False

    def _take(self, offset: int) -> _Cursor:
        with self._lock:
            usable = [c for c in self._idle if c.at <= offset]
            if usable:
                best = max(usable, key=lambda c: c.at)
                self._idle.remove(best)
                return best
        return _Cursor(self.path, self.kind)

    def _give_back(self, cursor: _Cursor) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(cursor)
                self._idle.sort(key=lambda c: c.at)
                if len(self._idle) <= IDLE_PER_FILE:
                    return
                cursor = self._idle.pop(0)
        cursor.stream.close()

    def read(self, offset: int, size: int) -> Iterator[bytes]:
        """Bytes ``offset``…``offset+size`` of the uncompressed stream, in chunks.

        Raises the stream's own errors (see :data:`STREAM_ERRORS`); the caller names the file.
        """
        cursor = self._take(offset)
        finished = False
        try:
            if not cursor.advance(offset):
                return
            left = size
            while left:
                data = cursor.stream.read(min(CHUNK, left))
                if not data:
                    return
                cursor.at += len(data)
                left -= len(data)
                yield data
            finished = True
        finally:
            if finished:
                self._give_back(cursor)
            else:
                cursor.stream.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for cursor in idle:
            cursor.stream.close()
