"""The package writer: a blob sink that writes a save's data files, then its meta.

Thread-safe: workers write whole entries at their planned offsets, each with
its own file handle. Finished blobs go to the journal so a rerun resumes.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from imageferry import __version__
from imageferry.core.digest import Digest
from imageferry.core.errors import PackageError
from imageferry.core.manifest import OCI_INDEX, Descriptor, Manifest
from imageferry.core.reference import is_digest
from imageferry.package.checksum import Progress, sha256_file
from imageferry.package.compress import compress_tar
from imageferry.package.filehash import RunningHash
from imageferry.package.journal import SUFFIX, Journal
from imageferry.package.layout import Item, Layout, plan_layout
from imageferry.package.meta import (
    META_SUFFIX,
    BaseRecord,
    BlobRecord,
    DataFileRecord,
    ImageRecord,
    PackageMeta,
    dump_meta,
)
from imageferry.package.nolink import open_no_link, write_text_no_link
from imageferry.package.tarfmt import END_OF_ARCHIVE, blob_name, entry_size, header, padding


@dataclass(frozen=True)
class BaseInfo:
    path: Path
    sha256: str
    digests: frozenset[str]


class PackageWriter:
    def __init__(
        self,
        folder: Path,
        stem: str,
        journal: Journal,
        *,
        incremental: BaseInfo | None,
        source: str,
        compression: str,
        files: int,
    ) -> None:
        self.name = "package"
        self.folder = folder
        self.stem = stem
        self.journal = journal
        self.base = incremental
        self.source = source
        self.compression = compression
        self.files = files
        self.resumed = journal.layout is not None
        self._items: dict[str, Item] = {}
        self._hashes: dict[int, RunningHash] = {}
        self._hash_lock = threading.Lock()
        self._mtime = int(datetime.datetime.now(datetime.UTC).timestamp())

    @classmethod
    def open(
        cls,
        outdir: Path,
        prefix: str,
        fingerprint: str,
        *,
        incremental: BaseInfo | None,
        source: str,
        compression: str,
        files: int,
    ) -> PackageWriter:
        """Resume the unfinished save with these arguments, or start a new package."""
        kind = "inc" if incremental else "full"
        journal = Journal.find(outdir, f"{prefix}_{kind}_*", fingerprint)
        if journal is not None:
            folder, stem = journal.path.parent, journal.path.name[: -len(SUFFIX)]
        else:
            now = datetime.datetime.now()
            folder = outdir / now.strftime("%Y%m%d")
            stem = f"{prefix}_{kind}_{now:%Y%m%d%H%M}"
            if list(folder.glob(f"{stem}_*")) or (folder / f"{stem}{SUFFIX}").exists():
                stem = f"{prefix}_{kind}_{now:%Y%m%d%H%M%S}"
            folder.mkdir(parents=True, exist_ok=True)
            journal = Journal(folder / f"{stem}{SUFFIX}", fingerprint)
        return cls(
            folder,
            stem,
            journal,
            incremental=incremental,
            source=source,
            compression=compression,
            files=files,
        )

    # -- planning ----------------------------------------------------------

    def prepare(self, items: Iterable[Item]) -> bool:
        """Fix the layout for ``items``. False when an earlier run's work was discarded."""
        self._items = {i.digest: i for i in items}
        fresh = [i for i in self._items.values() if not self._in_base(i.digest)]
        earlier = self.journal.layout
        if earlier is not None and _same_items(earlier, fresh) and self._files_there(earlier):
            return True  # resume in the earlier layout, whatever -j is now
        layout = plan_layout(fresh, self.files)
        kept = self.journal.layout is None
        self.journal.start(layout)
        self._hashes.clear()  # new, empty data files
        for k in range(layout.files):
            with open_no_link(self.data_path(k, raw=True), "wb"):
                pass
        return kept

    def _files_there(self, layout: Layout) -> bool:
        return all(self.data_path(k, raw=True).is_file() for k in range(layout.files))

    @property
    def layout(self) -> Layout:
        if self.journal.layout is None:
            raise PackageError("internal: the package layout was not prepared")
        return self.journal.layout

    def data_path(self, k: int, raw: bool = False) -> Path:
        suffix = ".tar" if raw or self.compression == "none" else ".tar.zst"
        return self.folder / f"{self.stem}_{k}{suffix}"

    def _in_base(self, digest: str) -> bool:
        return self.base is not None and digest in self.base.digests

    # -- the sink protocol -------------------------------------------------

    def has_blob(self, repository: str, desc: Descriptor) -> bool:
        digest = str(desc.digest)
        return self._in_base(digest) or digest in self.journal.done

    def mount_blob(self, repository: str, from_repository: str, desc: Descriptor) -> bool:
        return self.has_blob(repository, desc)

    def put_blob(self, repository: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        digest = str(desc.digest)
        slot = self.layout.slots.get(digest)
        if slot is None or slot.size != desc.size:
            raise PackageError(f"internal: blob {digest} was not planned for this package")
        path = self.data_path(slot.file, raw=True)
        running = self._running_hash(slot.file)
        claimed = running.claim(slot.offset)
        parts = chain([header(blob_name(digest), desc.size, self._mtime)], chunks)
        try:
            with open_no_link(path, "r+b") as f:
                f.seek(slot.offset)
                for part in chain(parts, [b"\0" * padding(desc.size)]):
                    f.write(part)
                    if claimed:
                        running.feed(part)
        except BaseException as exc:
            if claimed:
                running.abandon()
            if not isinstance(exc, OSError):
                raise
            raise PackageError(
                f"writing {path}: {exc.strerror or exc}; free some space (or choose another -o "
                "folder) and run the same command again to resume"
            ) from None
        self.journal.mark_done(digest)
        running.written(slot.offset, slot.offset + entry_size(desc.size), claimed)

    def _running_hash(self, k: int) -> RunningHash:
        """The sha256 of data file ``k`` taken as it is written (see package/filehash.py)."""
        with self._hash_lock:
            if k not in self._hashes:
                self._hashes[k] = RunningHash(self.data_path(k, raw=True))
            return self._hashes[k]

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        if is_digest(reference):
            return Digest.parse(reference) if reference in self.journal.done else None
        found = self.journal.tags.get((repository, reference))
        return Digest.parse(found) if found else None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        digest = str(manifest.digest)
        if not self._in_base(digest) and digest not in self.journal.done:
            self.put_blob(repository, manifest.descriptor, [manifest.raw])
        if not is_digest(reference):
            self.journal.record_tag(repository, reference, digest)

    def close(self) -> None:
        pass

    # -- finishing ---------------------------------------------------------

    def finish(self, images: list[ImageRecord], progress: Progress | None = None) -> Path:
        """Close the data files, hash them, write the meta file last. Returns its path.

        Most of each data file was hashed as it was written (package/filehash.py): only
        what that did not reach is read here.

        ``progress`` hears of every MiB hashed and may raise (a cancel) to stop before the
        meta file exists: a rerun then finishes the package.
        """
        layout = self.layout
        missing = [d for d in layout.slots if d not in self.journal.done]
        if missing:
            raise PackageError(f"internal: {len(missing)} blob(s) were never written")
        ends = list(layout.ends)
        if self.base is None:
            ends[0] = self._write_oci_layout(ends[0], images)
        for k, end in enumerate(ends):
            with open_no_link(self.data_path(k, raw=True), "r+b") as f:
                f.seek(end)
                f.write(END_OF_ARCHIVE)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
        frames = self._compress(layout.files)
        meta = PackageMeta(
            tool=f"imageferry {__version__}",
            created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            kind="incremental" if self.base else "full",
            base=BaseRecord(file=self.base.path.name, sha256=self.base.sha256)
            if self.base
            else None,
            source=self.source,
            compression="zstd" if self.compression == "zstd" else "none",
            images=images,
            blobs=self._blob_records(frames),
            datafiles=[self._file_record(k, progress) for k in range(layout.files)],
        )
        final = self.folder / f"{self.stem}{META_SUFFIX}"
        temp = final.with_suffix(".yaml.tmp")
        write_text_no_link(temp, dump_meta(meta))
        os.replace(temp, final)
        self.journal.remove()
        return final

    def _write_oci_layout(self, end: int, images: list[ImageRecord]) -> int:
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": img.media_type,
                    "digest": img.digest,
                    "size": self._items[img.digest].size,
                    "annotations": {
                        "org.opencontainers.image.ref.name": _ref_name(img),
                        "io.containerd.image.name": _ref_name(img),
                    },
                }
                for img in images
            ],
        }
        entries = [
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps(index, indent=2).encode()),
        ]
        with open_no_link(self.data_path(0, raw=True), "r+b") as f:
            f.seek(end)
            for name, data in entries:
                f.write(header(name, len(data), self._mtime) + data + b"\0" * padding(len(data)))
                end += entry_size(len(data))
        return end

    def _compress(self, files: int) -> dict[int, dict[int, int]]:
        if self.compression != "zstd":
            return {}
        frames = {}
        for k in range(files):
            raw = self.data_path(k, raw=True)
            frames[k] = compress_tar(raw, self.data_path(k))
            raw.unlink()
        return frames

    def _blob_records(self, frames: dict[int, dict[int, int]]) -> list[BlobRecord]:
        records = []
        for digest, item in sorted(self._items.items()):
            slot = self.layout.slots.get(digest)
            if slot is None:
                records.append(
                    BlobRecord(digest=digest, size=item.size, media_type=item.media_type)
                )
                continue
            records.append(
                BlobRecord(
                    digest=digest,
                    size=item.size,
                    media_type=item.media_type,
                    file=self.data_path(slot.file).name,
                    offset=slot.data_offset,
                    frame=frames[slot.file][slot.offset] if frames else None,
                )
            )
        return records

    def _file_record(self, k: int, progress: Progress | None) -> DataFileRecord:
        path = self.data_path(k)
        running = self._hashes.get(k) if self.compression != "zstd" else None
        digest = running.finish(progress) if running else sha256_file(path, progress)
        return DataFileRecord(name=path.name, size=path.stat().st_size, sha256=digest)


def _ref_name(img: ImageRecord) -> str:
    return f"{img.repository}:{img.tag}" if img.tag else f"{img.repository}@{img.digest}"


def _same_items(layout: Layout, items: list[Item]) -> bool:
    return {d: s.size for d, s in layout.slots.items()} == {i.digest: i.size for i in items}
