"""The package reader: a blob source over a verified package.

Blobs are read by offset (or by zstd frame), never more than the size the
meta records. What a data file is comes from its bytes, not from the meta's
``compression`` (an edited meta earns a warning): a plain tar is read by
offset, a frame-compressed zstd file by frame, anything else compressed as a
stream (see :mod:`.container`). The engine checks every byte against its digest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imageferry.core.errors import NotFoundError, PackageError
from imageferry.core.manifest import Descriptor, Manifest, parse_manifest
from imageferry.core.reference import Reference, is_digest, reference_text
from imageferry.package import container
from imageferry.package.checksum import Progress, sha256_file
from imageferry.package.compress import open_frame, read_frame
from imageferry.package.container import STREAM_ERRORS, StreamCursors
from imageferry.package.meta import MAX_MANIFEST, BlobRecord, PackageMeta, PartRecord, load_meta
from imageferry.package.tarfmt import (
    BLOCK,
    blob_name,
    blob_of_entry,
    padding,
    parse_header,
    part_name,
    read_span,
)

log = logging.getLogger(__name__)
_FRAMES = "frames"  # a --compress zstd data file read frame by frame


class PackageReader:
    def __init__(self, meta_path: Path, meta: PackageMeta | None = None) -> None:
        self.meta_path = meta_path
        self.folder = meta_path.parent
        self.meta: PackageMeta = meta or load_meta(meta_path)
        self.name = meta_path.name
        self._blobs = self.meta.blob_map()
        self._tags = {(i.repository, i.tag): i for i in self.meta.images if i.tag}
        # data file name → container its bytes showed ("tar", "gzip", "zstd", …), set by verify()
        self.containers: dict[str, str] = {}
        # problems that did not stop the package (meta and bytes disagree), set by verify()
        self.warnings: list[str] = []
        self._streams: dict[str, StreamCursors] = {}
        self._expected: dict[bool, dict[str, dict[int, tuple[str, int]]]] = {}
        self._modes: dict[str, str] = {}

    # -- verification ------------------------------------------------------

    def verify(self, full: bool = True, workers: int = 4, progress: Progress | None = None) -> None:
        """Sizes always; sha256 of every data file when ``full``; every tar header checked.

        Raises :class:`PackageError` naming the first problem; reads nothing else.
        ``progress`` hears of every MiB hashed (from worker threads) and may raise to stop.
        """
        _refuse(self._size_problems())
        if full:
            _refuse(self._checksum_problems(workers, progress))
        for record in self.meta.datafiles:
            self._open_data_file(record.name)
        self._warn_compression()

    def _size_problems(self) -> list[str]:
        problems = []
        for record in self.meta.datafiles:
            path = self.folder / record.name
            if not path.is_file():
                problems.append(
                    f"data file {record.name} is missing (expected beside {self.name})"
                    + self._parts_note(record.name)
                )
            elif path.stat().st_size != record.size:
                problems.append(
                    f"data file {record.name} has {path.stat().st_size} bytes, the meta file "
                    f"records {record.size}: it was cut short or altered"
                    + self._parts_note(record.name)
                    + "; copy it again"
                )
        return problems

    def _checksum_problems(self, workers: int, progress: Progress | None) -> list[str]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            sums = list(
                pool.map(lambda r: sha256_file(self.folder / r.name, progress), self.meta.datafiles)
            )
        recorded = {r.sha256: r.name for r in self.meta.datafiles}
        problems = []
        for record, actual in zip(self.meta.datafiles, sums, strict=True):
            if actual != record.sha256:
                other = recorded.get(actual)
                swapped = f": it holds what {other} should (swapped?)" if other else ""
                problems.append(
                    f"data file {record.name} is damaged (sha256 {actual[:12]}…, expected "
                    f"{record.sha256[:12]}…){swapped}; copy it again"
                )
        return problems

    def _parts_note(self, name: str) -> str:
        """Which parts of split blobs ``name`` holds (for a message), or nothing."""
        held = [
            f"part {n} of {len(b.parts or [])} of blob {b.digest[:19]}…"
            for b in self.meta.blobs
            for n, p in enumerate(b.parts or [], 1)
            if p.file == name
        ]
        return f"; it holds {', '.join(held[:3])}" if held else ""

    def _open_data_file(self, name: str) -> None:
        """Sniff what ``name`` is, choose how to read it, check its tar headers where cheap."""
        path = self.folder / name
        kind = container.sniff(path)
        self.containers[name] = kind
        if kind == container.TAR:
            self._modes[name] = container.TAR
            self._check_entries(name)
        elif kind == container.ZSTD and self.meta.compression == "zstd":
            self._modes[name] = _FRAMES
            self._check_frames(name)
        elif kind in container.COMPRESSED:
            self._modes[name] = kind
            self._streams[name] = StreamCursors(path, kind)
        else:
            raise PackageError(f"data file {name} is {kind} compressed, which no package uses")

    def _warn_compression(self) -> None:
        said = "tar" if self.meta.compression == "none" else self.meta.compression
        wrong = {n: k for n, k in self.containers.items() if k != said}
        if wrong:
            found = ", ".join(f"{n} is {k}" for n, k in list(wrong.items())[:3])
            message = f"{self.name} says compression: {self.meta.compression}, but {found}"
            self.warnings.append(message + "; reading each data file as what it is")
            log.warning("%s", self.warnings[-1])

    def _check_frames(self, name: str) -> None:
        """Every entry's frame starts with its own tar header (a cheap check of each)."""
        expected = self._entries_in(name, frames=True)
        with (self.folder / name).open("rb") as f:
            for frame, (entry, size) in sorted(expected.items()):
                try:
                    open_frame(f, frame, entry, size)
                except (ValueError, *STREAM_ERRORS) as exc:
                    raise PackageError(
                        f"package refused: {name}: {exc}; the data file does not match the "
                        "meta file (damaged, or swapped with another); copy it again"
                    ) from None

    def _entries_in(self, name: str, frames: bool = False) -> dict[int, tuple[str, int]]:
        """What data file ``name`` must hold: data offset (or frame) → (entry name, size)."""
        if frames not in self._expected:
            self._expected[frames] = _entries_by_file(self.meta, frames)
        return dict(self._expected[frames].get(name, {}))

    def _check_entries(self, name: str) -> None:
        expected = self._entries_in(name)
        path = self.folder / name
        with path.open("rb") as f:
            while True:
                at = f.tell()
                block = f.read(BLOCK)
                if len(block) < BLOCK:
                    raise PackageError(f"{name}: ends without a tar end marker; copy it again")
                try:
                    parsed = parse_header(block, name)
                except ValueError as exc:
                    raise PackageError(f"package refused: {exc}") from None
                if parsed is None:
                    break
                entry, size = parsed
                if blob_of_entry(entry) is not None:
                    if expected.pop(at + BLOCK, None) != (entry, size):
                        raise PackageError(
                            f"package refused: {name} holds '{entry}' at offset {at}, which the "
                            "meta file does not list there"
                        )
                f.seek(size + padding(size), 1)
        if expected:
            raise PackageError(
                f"{name}: {len(expected)} blob(s) or part(s) listed in the meta are not in it"
            )

    # -- the source protocol -----------------------------------------------

    def manifest_digest_of(self, repository: str, reference: str) -> str:
        """The digest a tag (or digest) names in this package."""
        if is_digest(reference):
            return reference
        img = self._tags.get((repository, reference))
        if img is None:
            raise NotFoundError(f"{self.name} has no image {reference_text(repository, reference)}")
        return img.digest

    def blob_map_entry(self, ref: Reference) -> BlobRecord:
        """The record of the manifest that ``ref`` (tag or digest) names in this package."""
        digest = self.manifest_digest_of(ref.repository, ref.tag_or_digest)
        record = self._blobs.get(digest)
        if record is None:
            raise NotFoundError(f"{self.name}: manifest {digest} is not in this package")
        return record

    def blob_record(self, digest: str) -> BlobRecord:
        record = self._blobs.get(digest)
        if record is None:
            raise NotFoundError(f"{self.name}: blob {digest} is not in this package")
        if record.in_base:
            base = self.meta.base.file if self.meta.base else "its base package"
            raise PackageError(
                f"blob {digest[:19]} is in the base package {base}, not in {self.name}; "
                f"load {base} into the target first"
            )
        return record

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return self._manifest(self.manifest_digest_of(repository, reference), repository)

    def _manifest(self, digest: str, repository: str) -> Manifest:
        record = self.blob_record(digest)
        if record.size > MAX_MANIFEST:
            raise PackageError(
                f"{self.name}: manifest {digest} of {repository} has {record.size} bytes, more "
                "than the 8 MiB a manifest may have; the package is refused"
            )
        raw = b"".join(self._read(record))
        try:
            manifest = parse_manifest(raw, record.media_type, f"{self.name}: {repository}")
        except RecursionError:
            raise PackageError(
                f"{self.name}: manifest {digest} of {repository} is nested too deeply"
            ) from None
        if str(manifest.digest) != digest:
            raise PackageError(
                f"{self.name}: manifest {digest[:19]} is damaged; copy the package again"
            )
        return manifest

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        record = self.blob_record(str(desc.digest))
        return self._read(record)

    def _read(self, record: BlobRecord) -> Iterator[bytes]:
        """The blob's bytes, part after part. Raises PackageError naming file and entry."""
        pieces = record.pieces()
        assert pieces, f"blob {record.digest} has no bytes in this package"
        for number, piece in enumerate(pieces, 1):
            entry = part_name(record.digest, number) if record.parts else blob_name(record.digest)
            got = 0
            for data in self._read_piece(record.digest, piece, entry):
                got += len(data)
                yield data
            if got != piece.size:
                raise PackageError(
                    f"data file {piece.file} ends inside {entry} ({got} of {piece.size} bytes): "
                    "it was cut short; copy it again"
                )

    def _read_piece(self, digest: str, piece: PartRecord, entry: str) -> Iterator[bytes]:
        """One entry's bytes by offset, frame or stream."""
        path = self.folder / piece.file
        mode = self._modes.get(piece.file)
        try:
            if piece.file in self._streams:
                yield from self._streams[piece.file].read(piece.offset, piece.size)
                return
            with path.open("rb") as f:
                if piece.frame is not None and mode in (None, _FRAMES):
                    yield from read_frame(f, piece.frame, entry, piece.size)
                    return
                f.seek(piece.offset)
                yield from read_span(f.read, piece.size)
        except ValueError as exc:
            raise PackageError(f"package refused: {piece.file}: {exc}") from None
        except STREAM_ERRORS as exc:
            raise PackageError(
                f"reading {path} (blob {digest}): {exc}; copy the package again"
            ) from None

    def close(self) -> None:
        for streams in self._streams.values():
            streams.close()


def _refuse(problems: list[str]) -> None:
    if problems:
        raise PackageError("package check failed:\n  " + "\n  ".join(problems))


def _entries_by_file(meta: PackageMeta, frames: bool) -> dict[str, dict[int, tuple[str, int]]]:
    """Every data file's entries: data offset (or frame) → (entry name, size)."""
    expected: dict[str, dict[int, tuple[str, int]]] = {}
    for b in meta.blobs:
        for number, piece in enumerate(b.pieces(), 1):
            at = piece.frame if frames else piece.offset
            if at is not None:
                entry = part_name(b.digest, number) if b.parts else blob_name(b.digest)
                expected.setdefault(piece.file, {})[at] = (entry, piece.size)
    return expected
