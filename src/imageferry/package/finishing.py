"""The last steps of a save, as functions of what the writer planned and wrote.

The OCI layout entries that make a full package an image layout, the zstd
compression of data files, the check that no file passed its size limit, and the
meta file's blob records (whole entries, or the parts of a split blob).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from imageferry.core.errors import PackageError
from imageferry.core.manifest import OCI_INDEX
from imageferry.package.layout import Budget, Item, Layout, Piece, file_costs
from imageferry.package.meta import BlobRecord, ImageRecord, PartRecord
from imageferry.package.nolink import open_no_link, sync
from imageferry.package.tarfmt import END_OF_ARCHIVE, entry_size, header, padding

DataPath = Callable[..., Path]  # data_path(k, raw=False): a data file (raw: before zstd)
Frames = dict[int, dict[int, int]]  # data file → entry offset → zstd frame offset


def layout_entries(images: list[ImageRecord], items: dict[str, Item]) -> list[tuple[str, bytes]]:
    """``oci-layout`` and ``index.json``: a full package extracted is an OCI layout."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": img.media_type,
                "digest": img.digest,
                "size": items[img.digest].size,
                "annotations": {
                    "org.opencontainers.image.ref.name": _ref_name(img),
                    "io.containerd.image.name": _ref_name(img),
                },
            }
            for img in images
        ],
    }
    return [
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
        ("index.json", json.dumps(index, indent=2).encode()),
    ]


def close_archives(
    data_path: DataPath,
    layout: Layout,
    budget: Budget | None,
    entries: list[tuple[str, bytes]],
    mtime: int,
) -> list[int]:
    """``entries`` (the OCI layout's, for a full package) after the blobs, then each
    tar's end. Returns the data files' sizes. Nothing is synced here."""
    ends = list(layout.ends)
    if entries:
        k = _entries_file(layout, budget, entries)
        if k == len(ends):  # every file is full to the limit: one more for index.json
            with open_no_link(data_path(k, raw=True), "wb"):
                ends.append(0)
        with open_no_link(data_path(k, raw=True), "r+b") as f:
            f.seek(ends[k])
            for name, data in entries:
                f.write(header(name, len(data), mtime) + data + b"\0" * padding(len(data)))
                ends[k] += entry_size(len(data))
    for k, end in enumerate(ends):
        with open_no_link(data_path(k, raw=True), "r+b") as f:
            f.seek(end)
            f.write(END_OF_ARCHIVE)
            f.truncate()
    return ends


def _entries_file(layout: Layout, budget: Budget | None, entries: list[tuple[str, bytes]]) -> int:
    """Data file 0, or with a size limit the first file with room for ``entries``."""
    if budget is None:
        return 0
    need = sum(budget.entry(len(data)) for _, data in entries)
    costs = file_costs(layout, budget)
    room = [k for k, cost in enumerate(costs) if cost + need <= budget.capacity]
    return room[0] if room else len(costs)


def compress_files(data_path: DataPath, files: int, compression: str) -> Frames:
    """zstd: each ``.tar`` into its ``.tar.zst`` (synced before the ``.tar`` goes)."""
    if compression != "zstd":
        return {}
    from imageferry.package.compress import compress_tar  # zstandard: only when compressing

    frames = {}
    for k in range(files):
        raw, packed = data_path(k, raw=True), data_path(k)
        try:
            frames[k] = compress_tar(raw, packed)
            with open_no_link(packed, "r+b") as f:
                sync(f)  # on disk before its .tar goes
        except BaseException:
            packed.unlink(missing_ok=True)
            raise
        raw.unlink()
    return frames


def check_limit(data_path: DataPath, files: int, budget: Budget | None) -> None:
    """No data file may pass the limit; the plan makes sure, this proves it."""
    if budget is None:
        return
    for k in range(files):
        size = data_path(k).stat().st_size
        if size > budget.limit:
            raise PackageError(
                f"internal: {data_path(k).name} has {size} bytes, more than the "
                f"{budget.limit} allowed; no meta file was written"
            )


def blob_records(
    items: dict[str, Item], layout: Layout, frames: Frames, data_path: DataPath
) -> list[BlobRecord]:
    """Where each blob is: in the base, in one entry, or in parts across files."""
    records = []
    for digest, item in sorted(items.items()):
        slot = layout.slots.get(digest)
        if slot is None:
            records.append(BlobRecord(digest=digest, size=item.size, media_type=item.media_type))
            continue
        if slot.split:
            parts = [_part_record(p, frames, data_path) for p in slot.parts]
            records.append(
                BlobRecord(digest=digest, size=item.size, media_type=item.media_type, parts=parts)
            )
            continue
        records.append(
            BlobRecord(
                digest=digest,
                size=item.size,
                media_type=item.media_type,
                file=data_path(slot.file).name,
                offset=slot.data_offset,
                frame=frames[slot.file][slot.offset] if frames else None,
            )
        )
    return records


def _part_record(piece: Piece, frames: Frames, data_path: DataPath) -> PartRecord:
    return PartRecord(
        file=data_path(piece.file).name,
        offset=piece.data_offset,
        size=piece.size,
        frame=frames[piece.file][piece.offset] if frames else None,
    )


def _ref_name(img: ImageRecord) -> str:
    return f"{img.repository}:{img.tag}" if img.tag else f"{img.repository}@{img.digest}"
