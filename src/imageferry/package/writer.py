"""The package writer: a blob sink that writes a save's data files, then its meta.

Thread-safe: workers write whole entries at their planned offsets, each with
its own file handle. Finished blobs go to the journal, which makes them durable
in groups (the data files it names are fsynced first, ``journal.py``), so a rerun
resumes; a rerun first checks the journal's claims against the data files
(``resume.py``). A full disk is an :class:`OutOfSpaceError`
naming the folder and the space still needed; the journal stays whole.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from imageferry import __version__
from imageferry.core.digest import Digest
from imageferry.core.errors import PackageError
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Descriptor, Manifest
from imageferry.core.reference import is_digest
from imageferry.package.checksum import Progress, sha256_file
from imageferry.package.datasync import DirtyFiles
from imageferry.package.filehash import RunningHash
from imageferry.package.finishing import (
    blob_records,
    check_limit,
    close_archives,
    compress_files,
    layout_entries,
)
from imageferry.package.journal import SUFFIX, Journal
from imageferry.package.layout import Budget, Item, Layout, Piece, plan_layout
from imageferry.package.meta import (
    META_SUFFIX,
    BaseRecord,
    DataFileRecord,
    ImageRecord,
    PackageMeta,
    ReferrerRecord,
    dump_meta,
    required_version,
)
from imageferry.package.nolink import open_no_link, replace_text_no_link
from imageferry.package.partial import (
    CHECKPOINT,
    check_whole,
    hashed,
    write_checkpointed,
    written_prefix,
)
from imageferry.package.resume import Completeness, untrue_claims
from imageferry.package.space import free_space, is_out_of_space, out_of_space
from imageferry.package.tarfmt import (
    END_OF_ARCHIVE,
    ByteRanges,
    blob_name,
    entry_size,
    header,
    padding,
    part_name,
)

log = logging.getLogger(__name__)
FINISH_RESERVE = 256 * 1024  # the OCI layout entries, the meta file, the journal


@quick_dataclass(frozen=True)
class BaseInfo:
    """The package an incremental one builds on."""

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
        max_file_size: int | None = None,
        made_folders: Sequence[Path] = (),
    ) -> None:
        self.name = "package"
        self.folder = folder
        self.stem = stem
        self.journal = journal
        self.base = incremental
        self.source = source
        self.compression = compression
        self.files = files
        self.budget = Budget(max_file_size, compression == "zstd") if max_file_size else None
        self.resumed = journal.layout is not None
        self._items: dict[str, Item] = {}
        self._hashes: dict[int, RunningHash] = {}
        self._hash_lock = threading.Lock()
        self._dirty = DirtyFiles(self._raw_path)  # written since their last fsync
        journal.sync_data = self._dirty.sync
        self._mtime = int(datetime.datetime.now(datetime.UTC).timestamp())
        self._full = False  # the disk was found full: check the space before each blob
        self._made_folders = made_folders  # the deepest first; removed again if left empty
        self._complete = Completeness(
            lambda: self.journal.layout, self.journal.done, self._in_base, self._raw_path
        )

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
        max_file_size: int | None = None,
    ) -> PackageWriter:
        """Resume the unfinished save with these arguments, or start a new package."""
        kind = "inc" if incremental else "full"
        journal = Journal.find(outdir, f"{prefix}_{kind}_*", fingerprint)
        made: list[Path] = []  # the folders this save makes
        if journal is not None:
            folder, stem = journal.path.parent, journal.path.name[: -len(SUFFIX)]
        else:
            now = datetime.datetime.now()
            folder = outdir / now.strftime("%Y%m%d")
            stem = f"{prefix}_{kind}_{now:%Y%m%d%H%M}"
            if list(folder.glob(f"{stem}_*")) or (folder / f"{stem}{SUFFIX}").exists():
                stem = f"{prefix}_{kind}_{now:%Y%m%d%H%M%S}"
            made = list(itertools.takewhile(lambda p: not p.exists(), (folder, *folder.parents)))
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PackageError(
                    f"cannot make the package folder {folder}: {exc.strerror or exc}; "
                    "choose a folder you can write to with -o (the window: Change folder)"
                ) from None
            journal = Journal(folder / f"{stem}{SUFFIX}", fingerprint)
        writer = cls(
            folder,
            stem,
            journal,
            incremental=incremental,
            source=source,
            compression=compression,
            files=files,
            max_file_size=max_file_size,
            made_folders=made,
        )
        if writer.resumed:
            writer._check_journal()
        return writer

    def _check_journal(self) -> None:
        """Withdraw what the journal claims but the data files lack; rewrite it whole."""
        untrue = untrue_claims(self.layout, list(self.journal.order), self._raw_path)
        with self._on_disk():
            self.journal.forget(untrue)  # also drops lines a crash cut short

    # -- planning ----------------------------------------------------------

    def prepare(self, items: Iterable[Item]) -> bool:
        """Fix the layout for ``items``. False when an earlier run's work was discarded."""
        self._items = {i.digest: i for i in items}
        fresh = [i for i in self._items.values() if not self._in_base(i.digest)]
        earlier = self.journal.layout
        if earlier is not None and _same_items(earlier, fresh):
            with self._on_disk():
                self._create_missing(earlier)
            return True  # resume in the earlier layout, whatever -j is now
        layout = plan_layout(fresh, self.files, self.budget)
        kept = self.journal.layout is None
        with self._on_disk():
            self.journal.start(layout)
            self._hashes.clear()  # new, empty data files
            for k in range(layout.files):
                with open_no_link(self.data_path(k, raw=True), "wb"):
                    pass
        return kept

    def _create_missing(self, layout: Layout) -> None:
        """Data files gone since the journal was written (their claims were withdrawn)."""
        for k in range(layout.files):
            if not self.data_path(k, raw=True).is_file():
                with open_no_link(self.data_path(k, raw=True), "wb"):
                    pass

    @property
    def layout(self) -> Layout:
        if self.journal.layout is None:
            raise PackageError("internal: the package layout was not prepared")
        return self.journal.layout

    def data_path(self, k: int, raw: bool = False) -> Path:
        suffix = ".tar" if raw or self.compression == "none" else ".tar.zst"
        return self.folder / f"{self.stem}_{k}{suffix}"

    def _raw_path(self, k: int) -> Path:
        return self.data_path(k, raw=True)

    # -- a full disk -------------------------------------------------------

    def space_needed(self) -> int:
        """About how many more bytes this package needs in its folder."""
        layout = self.journal.layout
        if layout is None:
            left = sum(entry_size(i.size) for i in self._items.values())
            files, biggest = self.files, left
        else:
            done = self.journal.done
            left = sum(entry_size(s.size) for d, s in layout.slots.items() if d not in done)
            files, biggest = layout.files, max(layout.ends, default=0)
        left += files * len(END_OF_ARCHIVE) + FINISH_RESERVE
        if self.compression == "zstd":
            left += biggest  # a compressed copy is written before its .tar goes
        return left

    @contextmanager
    def _on_disk(self) -> Iterator[None]:
        """Writes under here: a full disk becomes OutOfSpaceError, other OSErrors PackageError."""
        try:
            yield
        except OSError as exc:
            if not is_out_of_space(exc):
                raise PackageError(
                    f"writing the package in {self.folder}: {exc.strerror or exc}"
                ) from None
            self._full = True
            raise out_of_space(self.folder, self.space_needed()) from None

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
        if self._full and (free_space(self.folder) or 0) < entry_size(desc.size):
            raise out_of_space(self.folder, self.space_needed())  # not worth downloading
        stream = ByteRanges(chunks)
        with self._on_disk():
            for piece in slot.pieces():
                self._write_piece(digest, piece, stream)
            if stream.rest():
                raise PackageError(f"internal: blob {digest} has more than its {desc.size} bytes")
            self.journal.mark_done(digest)

    def put_blob_resumable(
        self, repository: str, desc: Descriptor, open_from: Callable[[int], Iterable[bytes]]
    ) -> None:
        """Continue a blob an earlier run cut off in its data file (``open_from(n)``: the
        blob from byte ``n`` on); else write it whole. See ``partial.py``."""
        digest = str(desc.digest)
        slot = self.layout.slots.get(digest)
        claimed = self.journal.partial.get(digest, 0)
        hasher = None
        if slot is not None and slot.size == desc.size and claimed:
            hasher = written_prefix(self._raw_path(slot.file), slot, digest, claimed)
        chunks = open_from(claimed if hasher is not None else 0)
        try:
            if slot is None or hasher is None:
                self.put_blob(repository, desc, chunks)
                return
            with self._on_disk():
                with open_no_link(self._raw_path(slot.file), "r+b") as f:
                    f.seek(slot.data_offset + claimed)
                    mark = self._marker(digest, slot.size, slot.file)
                    written = write_checkpointed(f, hashed(chunks, hasher), claimed, mark)
                    self._check_continued(digest, slot.size, written, hasher)
                    f.write(b"\0" * padding(slot.size))
                self._dirty.add(slot.file)
                self.journal.mark_done(digest)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _check_continued(self, digest: str, size: int, written: int, hasher: object) -> None:
        try:
            check_whole(digest, size, written, hasher)
        except Exception:
            with self._on_disk():
                self.journal.forget([digest])  # the next attempt writes it whole
            raise

    def _marker(self, digest: str, size: int, k: int) -> Callable[[int], None] | None:
        if size <= 2 * CHECKPOINT:
            return None

        def mark(written: int) -> None:
            self._dirty.add(k)
            self.journal.mark_partial(digest, written)

        return mark

    def _write_piece(self, digest: str, piece: Piece, stream: ByteRanges) -> None:
        """One tar entry (the whole blob, or its part ``piece.number``), hashed into its
        data file's running sha256 on the way when it is next in line."""
        path = self.data_path(piece.file, raw=True)
        name = part_name(digest, piece.number) if piece.number else blob_name(digest)
        whole = piece.number == 0 and piece.size == self.layout.slots[digest].size
        running = self._running_hash(piece.file)
        claimed = running.claim(piece.offset)
        head, pad = header(name, piece.size, self._mtime), b"\0" * padding(piece.size)
        body = stream.take(piece.size)
        try:
            with open_no_link(path, "r+b") as f:
                f.seek(piece.offset)
                f.write(head)
                if claimed:
                    running.feed(head)
                mark = self._marker(digest, piece.size, piece.file) if whole else None
                write_checkpointed(f, _fed(running, body) if claimed else body, 0, mark)
                f.write(pad)
                if claimed:
                    running.feed(pad)
        except BaseException:
            if claimed:
                running.abandon()
            raise
        self._dirty.add(piece.file)
        running.written(piece.offset, piece.offset + entry_size(piece.size), claimed)

    def _running_hash(self, k: int) -> RunningHash:
        """The sha256 of data file ``k`` taken as it is written (see package/filehash.py)."""
        with self._hash_lock:
            if k not in self._hashes:
                self._hashes[k] = RunningHash(self.data_path(k, raw=True))
            return self._hashes[k]

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        """What the package holds under ``reference``: only an image with all its blobs."""
        tags = self.journal.tags
        found = reference if is_digest(reference) else tags.get((repository, reference))
        return Digest.parse(found) if found and self._complete(found) else None

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        digest = str(manifest.digest)
        if not self._in_base(digest) and digest not in self.journal.done:
            self.put_blob(repository, manifest.descriptor, [manifest.raw])
        if not is_digest(reference):
            with self._on_disk():
                self.journal.record_tag(repository, reference, digest)

    def close(self) -> None:
        """Commit what the journal has not yet (a stopped save resumes from it). The
        folders this save made (the dated one, and ``-o``'s if new) go again when nothing
        was written into them (a save whose images all failed to resolve)."""
        try:
            with self._on_disk():
                self.journal.close()
        except PackageError as exc:  # a full disk: those blobs are saved again
            log.warning("the journal of %s could not be written: %s", self.stem, exc)
        for folder in self._made_folders:
            try:
                folder.rmdir()
            except OSError:  # not empty: it holds this save's files
                break

    # -- finishing ---------------------------------------------------------

    def finish(
        self,
        images: list[ImageRecord],
        progress: Progress | None = None,
        referrers: Sequence[ReferrerRecord] = (),
    ) -> Path:
        """Close the data files, hash them, write the meta file last. Returns its path.

        Most of each data file was hashed as it was written (package/filehash.py): only
        what that did not reach is read here.

        ``progress`` hears of every MiB hashed and may raise (a cancel) to stop before the
        meta file exists: a rerun then finishes the package. A full disk raises
        OutOfSpaceError, with no meta file: a rerun after freeing space finishes it.
        """
        with self._on_disk():
            return self._finish(images, progress, referrers)

    def _finish(
        self,
        images: list[ImageRecord],
        progress: Progress | None,
        referrers: Sequence[ReferrerRecord],
    ) -> Path:
        layout = self.layout
        missing = [d for d in layout.slots if d not in self.journal.done]
        if missing:
            raise PackageError(f"internal: {len(missing)} blob(s) were never written")
        entries = layout_entries(images, self._items) if self.base is None else []
        ends = close_archives(self.data_path, layout, self.budget, entries, self._mtime)
        self._dirty.add(*range(len(ends)))
        self._dirty.sync()  # each data file whole on disk, with one fsync
        self.journal.commit()  # every blob claimed: a stop from here resumes
        frames = compress_files(self.data_path, len(ends), self.compression)
        check_limit(self.data_path, len(ends), self.budget)
        blobs = blob_records(self._items, self.layout, frames, self.data_path)
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
            blobs=blobs,
            datafiles=[self._file_record(k, progress) for k in range(len(ends))],
            referrers=list(referrers),
            version=required_version(blobs),
        )
        final = self.folder / f"{self.stem}{META_SUFFIX}"
        replace_text_no_link(final, dump_meta(meta))  # temp + fsync + rename
        self.journal.remove()
        return final

    def _file_record(self, k: int, progress: Progress | None) -> DataFileRecord:
        path = self.data_path(k)
        running = self._hashes.get(k) if self.compression != "zstd" else None
        digest = running.finish(progress) if running else sha256_file(path, progress)
        return DataFileRecord(name=path.name, size=path.stat().st_size, sha256=digest)


def _same_items(layout: Layout, items: list[Item]) -> bool:
    return {d: s.size for d, s in layout.slots.items()} == {i.digest: i.size for i in items}


def _fed(running: RunningHash, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` as they are, each also fed to the data file's running hash, in file order."""
    for chunk in chunks:
        running.feed(chunk)
        yield chunk
