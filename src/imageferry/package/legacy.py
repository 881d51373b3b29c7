"""Packages written by image-transmit (the tool imageferry replaces), read for loading.

Its data files are tar archives of ``<hex>.tar.gz`` / ``.tar`` / ``.json`` /
``.raw`` entries: plain tar files in practice, whatever ``compressor`` the meta
file names, or a tar inside one gzip / xz / zstd stream. What each file is
comes from its bytes (:func:`.container.sniff`); a meta file that says
otherwise earns one warning. :meth:`LegacyPackageReader.verify` indexes every
tar entry in one pass (plain files by seeking from header to header, compressed
ones by decompressing forward, writing nothing anywhere) and checks each
entry's name and size against what the meta file's manifests declare. Blobs
are then read at their offsets: directly in a plain tar, through
:class:`.container.StreamCursors` in a compressed one. Every byte is checked
against its digest by the engine as it is pushed.
"""

from __future__ import annotations

import logging
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from imageferry.core.errors import PackageError
from imageferry.core.manifest import Manifest
from imageferry.package import container
from imageferry.package.checksum import Progress
from imageferry.package.container import STREAM_ERRORS, StreamCursors
from imageferry.package.legacymeta import (
    SKIP_PREFIX,
    LegacyImage,
    LegacyMeta,
    is_legacy_meta,
    parse_legacy_meta,
)
from imageferry.package.meta import (
    BaseRecord,
    BlobRecord,
    DataFileRecord,
    ImageRecord,
    PackageMeta,
)
from imageferry.package.reader import PackageReader
from imageferry.package.tarfmt import BLOCK, padding

__all__ = ["SKIP_PREFIX", "LegacyPackageReader", "is_legacy_meta", "legacy_blob_digests"]

log = logging.getLogger(__name__)
_ENTRY = re.compile(r"^([a-f0-9]{64})(\.tar\.gz|\.tar|\.json|\.raw)?$")
_UNREADABLE = (container.LZ4, container.SQUASHFS)
_TRAILER_LIMIT = 1024 * 1024  # zero padding after a tar's end marker, at most


class LegacyPackageReader(PackageReader):
    def __init__(self, meta_path: Path, data: dict) -> None:
        legacy = parse_legacy_meta(meta_path, data)
        self.legacy = legacy
        self.legacy_compressor = legacy.compressor
        self._sizes = legacy.datafiles
        self._manifests = {str(i.manifest.digest): i.manifest for i in legacy.images}
        self._declared = _declared_sizes(legacy)
        self._cursors: dict[str, StreamCursors] = {}
        self._progress: Progress | None = None
        meta = PackageMeta(
            tool="image-transmit",
            created="",
            kind="incremental" if legacy.base else "full",
            base=BaseRecord(file=legacy.base, sha256="") if legacy.base else None,
            source="",
            images=[_image_record(meta_path, i) for i in legacy.images],
            blobs=[],
            datafiles=[DataFileRecord(name=n, size=s, sha256="") for n, s in self._sizes.items()],
        )
        super().__init__(meta_path, meta)

    def verify(self, full: bool = True, workers: int = 4, progress: Progress | None = None) -> None:
        """Count and sizes (all image-transmit records), then an index of every tar entry.

        Raises :class:`PackageError` naming the data file (and entry). Fills
        :attr:`containers` with what each data file turned out to be.
        """
        problems = []
        for name, size in self._sizes.items():
            path = self.folder / name
            if not path.is_file():
                problems.append(f"data file {name} is missing (expected beside {self.name})")
            elif size and path.stat().st_size != size:
                problems.append(
                    f"data file {name} has {path.stat().st_size} bytes, the meta "
                    f"file records {size}: copy it again"
                )
        if problems:
            raise PackageError("package check failed:\n  " + "\n  ".join(problems))
        records = [BlobRecord(digest=f"sha256:{h}", size=0) for h in self.legacy.in_base]
        self._progress = progress
        seen: set[str] = set()
        for name in self._sizes:
            records += self._index(name, seen)
        missing = sorted(set(self.legacy.carried) - seen)
        if missing:
            raise PackageError(
                f"package refused: {self.name} lists {len(missing)} blob(s) that no data file "
                f"holds (first: {missing[0]}); copy the package again"
            )
        for digest, manifest in self._manifests.items():  # manifests live in the meta file
            records.append(BlobRecord(digest=digest, size=manifest.size, file="(meta)", offset=0))
        self.meta.blobs = records
        self._blobs = self.meta.blob_map()
        self._warn_compressor()

    def _index(self, name: str, seen: set[str]) -> list[BlobRecord]:
        path = self.folder / name
        kind = container.sniff(path)
        self.containers[name] = kind
        if kind in _UNREADABLE:
            raise PackageError(
                f"{name}: image-transmit data file compressed with {kind}, which imageferry "
                "cannot read; save the images again with imageferry"
            )
        try:
            with container.open_stream(path, kind) as f:
                end = path.stat().st_size if kind == container.TAR else None
                records = self._scan(f, name, end, seen)
        except STREAM_ERRORS as exc:
            raise PackageError(
                f"{name}: the {kind} data is damaged or cut short ({exc}); copy it again"
            ) from None
        if kind != container.TAR:
            self._cursors[name] = StreamCursors(path, kind)
        return records

    def _scan(self, f: BinaryIO, name: str, end: int | None, seen: set[str]) -> list[BlobRecord]:
        """Entries of one tar: seeking when ``end`` (the plain file's size) is known."""
        records: list[BlobRecord] = []
        at = 0
        while True:
            block = container.read_exactly(f, BLOCK)
            if not block and end is not None:
                return records  # a plain tar cut at an entry boundary: the count check decides
            if len(block) < BLOCK:
                raise PackageError(f"{name}: ends inside a tar entry at {at}; copy it again")
            if block == b"\0" * BLOCK:
                _check_trailer(f, name)
                return records
            hex_, size = self._entry(block, name, seen)
            records.append(
                BlobRecord(digest=f"sha256:{hex_}", size=size, file=name, offset=at + BLOCK)
            )
            step = size + padding(size)
            at += BLOCK + step
            if self._progress is not None:
                self._progress(BLOCK + step)  # may raise Cancelled: a stop during the check
            if end is not None and at <= end:
                f.seek(step, 1)
            elif end is not None or container.skip(f, step) != step:
                raise PackageError(f"{name}: ends inside entry {hex_}; copy it again")

    def _entry(self, block: bytes, name: str, seen: set[str]) -> tuple[str, int]:
        hex_, size = _entry(block, name)
        where = f"{name}: entry {hex_}"
        if hex_ not in self.legacy.carried:
            raise PackageError(f"package refused: {where} is not listed in {self.name}")
        if hex_ in seen:
            raise PackageError(f"package refused: {where} appears twice")
        declared = self._declared.get(hex_)
        if declared is None:
            raise PackageError(f"package refused: {where} is used by no manifest in {self.name}")
        if declared != size:
            raise PackageError(
                f"package refused: {where} has {size} bytes, its manifest declares {declared}"
            )
        seen.add(hex_)
        return hex_, size

    def _warn_compressor(self) -> None:
        said = self.legacy_compressor
        wrong = [n for n, kind in self.containers.items() if kind != said]
        if not wrong:
            return
        found = ", ".join(f"{n} is {self.containers[n]}" for n in wrong[:3])
        message = (
            f"{self.name} says compressor: {said}, but {found}"
            f"{' …' if len(wrong) > 3 else ''}; reading each data file as what it is"
        )
        self.warnings.append(message)
        log.warning("%s", message)

    def _read(self, record: BlobRecord) -> Iterator[bytes]:
        cursors = self._cursors.get(record.file or "")
        if cursors is None:
            yield from super()._read(record)
            return
        assert record.offset is not None
        try:
            yield from cursors.read(record.offset, record.size)
        except STREAM_ERRORS as exc:
            raise PackageError(
                f"reading {record.file} (entry {record.digest}): {exc}; copy the package again"
            ) from None

    def _manifest(self, digest: str, repository: str) -> Manifest:
        """image-transmit keeps image manifests in its meta file; others are blobs."""
        if digest in self._manifests:
            return self._manifests[digest]
        return super()._manifest(digest, repository)

    def close(self) -> None:
        for cursors in self._cursors.values():
            cursors.close()


def _image_record(meta_path: Path, image: LegacyImage) -> ImageRecord:
    try:
        return ImageRecord(
            repository=image.reference.repository,
            tag=image.reference.tag or "latest",
            digest=str(image.manifest.digest),
            media_type=image.manifest.media_type,
            source=image.url,
        )
    except ValueError as exc:
        raise PackageError(f"{meta_path.name}: manifests.{image.url}: {exc}") from None


def _declared_sizes(legacy: LegacyMeta) -> dict[str, int]:
    """hex → size, as the manifests in the meta file declare their blobs and child manifests."""
    sizes: dict[str, int] = {}
    for image in legacy.images:
        for desc in (*image.manifest.blobs, *image.manifest.children):
            sizes.setdefault(desc.digest.hex, desc.size)
    return sizes


def _check_trailer(f: BinaryIO, name: str) -> None:
    """After the end marker: only zero padding, and (compressed) a complete stream."""
    rest = container.read_exactly(f, _TRAILER_LIMIT + 1)
    if len(rest) > _TRAILER_LIMIT or rest.strip(b"\0"):
        raise PackageError(f"{name}: unexpected data after the end of the tar; copy it again")


def _entry(block: bytes, where: str) -> tuple[str, int]:
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.TarError, UnicodeDecodeError) as exc:
        raise PackageError(f"{where}: not a tar header ({exc}); copy the file again") from None
    m = _ENTRY.match(info.name)
    if not info.isreg() or m is None or info.size < 0:
        raise PackageError(f"package refused: {where} holds an unexpected entry '{info.name}'")
    return m.group(1), info.size


def legacy_blob_digests(data: dict, path: Path | None = None) -> frozenset[str]:
    """Every blob an image-transmit package carries or leaves to its base."""
    meta = parse_legacy_meta(path or Path("base meta file"), data)
    return frozenset(f"sha256:{h}" for h in (*meta.carried, *meta.in_base))
