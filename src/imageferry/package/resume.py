"""What a resumed save may trust: the journal's claims held against the data files.

A journal line says a blob is on disk, but a data file may have been cut short
(or its tail lost) behind the journal's back. Before a save resumes, every
claimed entry must fit in its file with the right tar header, and the last
blobs of each file (by place, and the last recorded) are hashed; one wrong
hash puts the whole file in doubt, and all its claimed blobs are hashed.

A recorded tag is trusted only when its manifest, and everything that
manifest needs, is in the package: older code could record a tag whose blobs
were never written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

from imageferry.core.digest import Digest, verified_chunks
from imageferry.core.errors import ImageFerryError
from imageferry.core.manifest import parse_manifest
from imageferry.package.layout import Layout, Slot
from imageferry.package.tarfmt import (
    BLOCK,
    blob_name,
    entry_size,
    parse_header,
    part_name,
    read_span,
)

log = logging.getLogger(__name__)
# hashed in each data file: the last by place (the layout puts the smallest last),
# and the last recorded (what a disk that lied about fsync would lose first)
TAIL_BY_PLACE = 2
TAIL_RECORDED = 1
MAX_MANIFEST = 4 * 1024 * 1024
MAX_DEPTH = 4  # index → manifest is one level; nested indexes are rare


def untrue_claims(layout: Layout, order: list[str], data_path: Callable[[int], Path]) -> set[str]:
    """The claimed-done digests (``order``: as recorded) that the data files do not bear out.

    Blocking: reads one header per claimed blob and hashes a few whole blobs per file.
    """
    untrue: set[str] = set()
    by_file: dict[int, list[str]] = {}
    for digest in order:
        slot = layout.slots.get(digest)
        if slot is None:
            untrue.add(digest)  # not part of this package
        elif slot.split:
            if not _parts_fit(digest, slot, data_path):
                untrue.add(digest)
        else:
            by_file.setdefault(slot.file, []).append(digest)
    for k, digests in sorted(by_file.items()):
        untrue |= _untrue_in_file(data_path(k), layout.slots, digests)
    if untrue:
        log.warning("the journal claimed %d blob(s) the data files lack: saved again", len(untrue))
    return untrue


def _untrue_in_file(path: Path, slots: dict[str, Slot], digests: list[str]) -> set[str]:
    if path.is_symlink():
        return set(digests)  # the writer refuses it later; trust nothing behind it
    try:
        f = path.open("rb")
    except OSError:
        return set(digests)
    with f:
        size = os.fstat(f.fileno()).st_size
        misfit = {d for d in digests if not _entry_fits(f, size, d, slots[d])}
        fits = [d for d in digests if d not in misfit]
        by_place = sorted(fits, key=lambda d: slots[d].offset)
        sample = set(by_place[-TAIL_BY_PLACE:]) | set(fits[-TAIL_RECORDED:])
        wrong = {d for d in sample if not _digest_holds(f, d, slots[d])}
        if wrong:  # the file is in doubt: check every claim in it
            wrong |= {d for d in fits if d not in sample and not _digest_holds(f, d, slots[d])}
    return misfit | wrong


def _parts_fit(digest: str, slot: Slot, data_path: Callable[[int], Path]) -> bool:
    """Every part of a split blob is where the layout puts it, with its own tar header.

    Split blobs are large: their bytes are not hashed here; the load checks the whole
    blob's digest, and a resumed save only trusts parts whose headers all stand."""
    for piece in slot.pieces():
        path = data_path(piece.file)
        try:
            if path.is_symlink():
                return False
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if piece.offset + entry_size(piece.size) > size:
                    return False
                f.seek(piece.offset)
                found = parse_header(f.read(BLOCK), "journal check")
        except (OSError, ValueError):
            return False
        if found != (part_name(digest, piece.number), piece.size):
            return False
    return True


def _entry_fits(f: BinaryIO, size: int, digest: str, slot: Slot) -> bool:
    if slot.offset + entry_size(slot.size) > size:
        return False
    f.seek(slot.offset)
    try:
        return parse_header(f.read(BLOCK), "journal check") == (blob_name(digest), slot.size)
    except ValueError:
        return False


def _digest_holds(f: BinaryIO, digest: str, slot: Slot) -> bool:
    f.seek(slot.data_offset)
    try:
        want = Digest.parse(digest)
        for _ in verified_chunks(read_span(f.read, slot.size), want, slot.size, digest):
            pass
    except (ImageFerryError, OSError):
        return False
    return True


class Completeness:
    """Whether a manifest and all it needs are in the package (read back from its data file)."""

    def __init__(
        self,
        layout: Callable[[], Layout | None],
        done: Collection[str],
        in_base: Callable[[str], bool],
        data_path: Callable[[int], Path],
    ) -> None:
        self._layout = layout
        self._done = done
        self._in_base = in_base
        self._data_path = data_path

    def __call__(self, digest: str, depth: int = 0) -> bool:
        if self._in_base(digest):
            return True
        layout = self._layout()
        slot = layout.slots.get(digest) if layout is not None else None
        if slot is None or digest not in self._done or depth > MAX_DEPTH:
            return False
        raw = self._read(digest, slot)
        if raw is None:
            return False
        try:
            manifest = parse_manifest(raw, slot.media_type, f"saved manifest {digest}")
        except ImageFerryError:
            return False
        needed = [str(b.digest) for b in manifest.blobs if not b.is_foreign]
        if not all(d in self._done or self._in_base(d) for d in needed):
            return False
        return all(self(str(c.digest), depth + 1) for c in manifest.children)

    def _read(self, digest: str, slot: Slot) -> bytes | None:
        if slot.size > MAX_MANIFEST:
            return None
        try:
            with self._data_path(slot.file).open("rb") as f:
                f.seek(slot.data_offset)
                raw = f.read(slot.size)
        except OSError:
            return None
        try:
            want = Digest.parse(digest)
        except ImageFerryError:
            return None
        return raw if Digest.of_bytes(raw, want.algorithm) == want else None
