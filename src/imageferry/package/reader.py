"""The package reader: a blob source over a verified package.

Blobs are read by offset (or by zstd frame), never by scanning a data file
from its start, and never more than the size the meta records. The engine
checks every byte against its digest.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zstandard

from imageferry.core.errors import NotFoundError, PackageError
from imageferry.core.manifest import Descriptor, Manifest, parse_manifest
from imageferry.core.reference import Reference, is_digest, reference_text
from imageferry.package.checksum import Progress, sha256_file
from imageferry.package.compress import read_frame
from imageferry.package.meta import BlobRecord, PackageMeta, load_meta
from imageferry.package.tarfmt import BLOCK, digest_of_name, padding, parse_header, read_span


class PackageReader:
    def __init__(self, meta_path: Path, meta: PackageMeta | None = None) -> None:
        self.meta_path = meta_path
        self.folder = meta_path.parent
        self.meta: PackageMeta = meta or load_meta(meta_path)
        self.name = meta_path.name
        self._blobs = self.meta.blob_map()
        self._tags = {(i.repository, i.tag): i for i in self.meta.images if i.tag}

    # -- verification ------------------------------------------------------

    def verify(self, full: bool = True, workers: int = 4, progress: Progress | None = None) -> None:
        """Sizes always; sha256 of every data file when ``full``; every tar header checked.

        Raises :class:`PackageError` naming the first problem; reads nothing else.
        ``progress`` hears of every MiB hashed (from worker threads) and may raise to stop.
        """
        problems = []
        for record in self.meta.datafiles:
            path = self.folder / record.name
            if not path.is_file():
                problems.append(f"data file {record.name} is missing (expected beside {self.name})")
            elif path.stat().st_size != record.size:
                problems.append(
                    f"data file {record.name} has {path.stat().st_size} bytes, the meta file "
                    f"records {record.size}: it was cut short or altered; copy it again"
                )
        if problems:
            raise PackageError("package check failed:\n  " + "\n  ".join(problems))
        if full:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                sums = list(
                    pool.map(
                        lambda r: sha256_file(self.folder / r.name, progress),
                        self.meta.datafiles,
                    )
                )
            for record, actual in zip(self.meta.datafiles, sums, strict=True):
                if actual != record.sha256:
                    problems.append(
                        f"data file {record.name} is damaged (sha256 {actual[:12]}…, expected "
                        f"{record.sha256[:12]}…); copy it again"
                    )
            if problems:
                raise PackageError("package check failed:\n  " + "\n  ".join(problems))
        if self.meta.compression == "none":
            for record in self.meta.datafiles:
                self._check_entries(record.name)

    def _check_entries(self, name: str) -> None:
        expected = {b.offset: b for b in self.meta.blobs if b.file == name}
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
                digest = digest_of_name(entry)
                if digest is not None:
                    record = expected.pop(at + BLOCK, None)
                    if record is None or record.digest != digest or record.size != size:
                        raise PackageError(
                            f"package refused: {name} holds '{entry}' at offset {at}, which the "
                            "meta file does not list there"
                        )
                f.seek(size + padding(size), 1)
        if expected:
            raise PackageError(f"{name}: {len(expected)} blob(s) listed in the meta are not in it")

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
        raw = b"".join(self._read(record))
        manifest = parse_manifest(raw, record.media_type, f"{self.name}: {repository}")
        if str(manifest.digest) != digest:
            raise PackageError(
                f"{self.name}: manifest {digest[:19]} is damaged; copy the package again"
            )
        return manifest

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        record = self.blob_record(str(desc.digest))
        return self._read(record)

    def _read(self, record: BlobRecord) -> Iterator[bytes]:
        assert record.file is not None and record.offset is not None
        path = self.folder / record.file
        try:
            with path.open("rb") as f:
                if record.frame is not None:
                    yield from read_frame(f, record.frame, BLOCK, record.size)
                    return
                f.seek(record.offset)
                yield from read_span(f.read, record.size)
        except (OSError, zstandard.ZstdError) as exc:
            raise PackageError(f"reading {path}: {exc}; copy the package again") from None

    def close(self) -> None:
        pass
