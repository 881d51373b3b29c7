"""Packages written by image-transmit (the tool imageferry replaces), read for loading.

Its meta file maps ``datafiles`` (name → size), ``compressor``, ``blobs``
(hex → images using it, or ``https://last.img/skip/it:<base meta>`` for
blobs left to a base package) and ``manifests`` (image → manifest JSON).
Data files are tar archives (optionally gzip, xz or zstd compressed) of
``<hex>.tar.gz`` / ``.tar`` / ``.json`` / ``.raw`` entries. This module turns
such a package into the reader imageferry's load already uses: the tar
headers are indexed once (compressed files are unpacked once, beside them),
then blobs are read by offset and checked against their digests like any other.
"""

from __future__ import annotations

import gzip
import lzma
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from imageferry.core.errors import NotFoundError, PackageError
from imageferry.core.manifest import Manifest, parse_manifest
from imageferry.core.reference import Reference
from imageferry.package.checksum import Progress
from imageferry.package.meta import (
    BaseRecord,
    BlobRecord,
    DataFileRecord,
    ImageRecord,
    PackageMeta,
)
from imageferry.package.reader import PackageReader
from imageferry.package.tarfmt import BLOCK, padding

SKIP_PREFIX = "https://last.img/skip/it:"
_ENTRY = re.compile(r"^([a-f0-9]{64})(\.tar\.gz|\.tar|\.json|\.raw)?$")
_COMPRESSORS = ("gzip", "xz", "zstd")


def _open_compressed(path: Path, compressor: str) -> BinaryIO:
    if compressor == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compressor == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    return zstandard.ZstdDecompressor().stream_reader(path.open("rb"))  # type: ignore[return-value]


def is_legacy_meta(data: Any) -> bool:
    return isinstance(data, dict) and "manifests" in data and "datafiles" in data


class LegacyPackageReader(PackageReader):
    def __init__(self, meta_path: Path, data: dict) -> None:
        self.legacy_compressor = str(data.get("compressor") or "tar")
        if self.legacy_compressor not in ("tar", *_COMPRESSORS):
            raise PackageError(
                f"{meta_path.name}: image-transmit package compressed with "
                f"'{self.legacy_compressor}', which imageferry cannot read; save the images "
                "again with imageferry"
            )
        self._sizes = {str(k): int(v or 0) for k, v in (data.get("datafiles") or {}).items()}
        self._manifests: dict[str, Manifest] = {}
        self._unpacked: list[Path] = []
        images, base = self._images(meta_path, data)
        self._base_blobs = {
            f"sha256:{h}": refs
            for h, refs in (data.get("blobs") or {}).items()
            if any(str(r).startswith(SKIP_PREFIX) for r in refs or [])
        }
        meta = PackageMeta(
            tool="image-transmit",
            created="",
            kind="incremental" if base else "full",
            base=BaseRecord(file=base, sha256="") if base else None,
            source="",
            images=images,
            blobs=[],
            datafiles=[DataFileRecord(name=n, size=s, sha256="") for n, s in self._sizes.items()],
        )
        super().__init__(meta_path, meta)

    def _images(self, meta_path: Path, data: dict) -> tuple[list[ImageRecord], str | None]:
        images, base = [], None
        for url, text in (data.get("manifests") or {}).items():
            url = str(url)
            if url.startswith(SKIP_PREFIX):
                base = url.removeprefix(SKIP_PREFIX)
                continue
            ref = Reference.parse(url.split("://", 1)[-1])
            manifest = parse_manifest(str(text).encode(), "", f"{meta_path.name}: {url}")
            self._manifests[str(manifest.digest)] = manifest
            images.append(
                ImageRecord(
                    repository=ref.repository,
                    tag=ref.tag or "latest",
                    digest=str(manifest.digest),
                    media_type=manifest.media_type,
                    source=url,
                )
            )
        for refs in (data.get("blobs") or {}).values():
            for r in refs or []:
                if str(r).startswith(SKIP_PREFIX):
                    base = base or str(r).removeprefix(SKIP_PREFIX)
        return images, base

    def verify(self, full: bool = True, workers: int = 4, progress: Progress | None = None) -> None:
        """Count and sizes (all image-transmit records), then an index of every tar entry."""
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
        records = [BlobRecord(digest=d, size=0, file=None) for d in self._base_blobs]
        for name in self._sizes:
            records += self._index(self._plain_tar(name))
        for digest, manifest in self._manifests.items():  # manifests live in the meta file
            records.append(BlobRecord(digest=digest, size=manifest.size, file="(meta)", offset=0))
        self.meta.blobs = records
        self._blobs = self.meta.blob_map()

    def _plain_tar(self, name: str) -> str:
        if self.legacy_compressor == "tar":
            return name
        plain = f"{name}.imageferry-unpacked.tar"
        with (
            _open_compressed(self.folder / name, self.legacy_compressor) as src,
            (self.folder / plain).open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst, 1024 * 1024)
        self._unpacked.append(self.folder / plain)
        return plain

    def _index(self, name: str) -> list[BlobRecord]:
        records = []
        with (self.folder / name).open("rb") as f:
            while True:
                block = f.read(BLOCK)
                if len(block) < BLOCK or block == b"\0" * BLOCK:
                    break
                hex_, size = _entry(block, name)
                records.append(
                    BlobRecord(digest=f"sha256:{hex_}", size=size, file=name, offset=f.tell())
                )
                f.seek(size + padding(size), 1)
        return records

    def _manifest(self, digest: str, repository: str) -> Manifest:
        """image-transmit keeps manifests in its meta file, not in the data files."""
        if digest not in self._manifests:
            raise NotFoundError(f"{self.name}: manifest {digest} is not in this package")
        return self._manifests[digest]

    def close(self) -> None:
        for path in self._unpacked:
            path.unlink(missing_ok=True)


def _entry(block: bytes, where: str) -> tuple[str, int]:
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except tarfile.TarError as exc:
        raise PackageError(f"{where}: not a tar header ({exc}); copy the file again") from None
    m = _ENTRY.match(info.name)
    if not info.isreg() or m is None:
        raise PackageError(f"package refused: {where} holds an unexpected entry '{info.name}'")
    return m.group(1), info.size


def legacy_blob_digests(data: dict) -> frozenset[str]:
    """Every blob an image-transmit package carries or leaves to its base."""
    return frozenset(f"sha256:{h}" for h in (data.get("blobs") or {}))
