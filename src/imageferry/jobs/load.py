"""Load (上传): verify an offline package, then push its images into target registries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import InputError, PackageError
from imageferry.core.events import EventSink, ImageDone, Message
from imageferry.core.imagelist import ListEntry
from imageferry.core.manifest import Descriptor
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSink
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import PackageReader, Target, open_package_reader, open_target
from imageferry.engine.plan import TransferPlan
from imageferry.engine.transfer import Transfer
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.pairing import Pairing, pair_references
from imageferry.jobs.results import RunResult
from imageferry.jobs.tally import Tally


@dataclass(frozen=True)
class LoadOptions:
    transfer: TransferOptions = field(default_factory=TransferOptions)
    verify: str = "full"  # "full": sha256 of every data file; "quick": sizes only


def open_verified(meta_path: Path, verify: str, events: EventSink, workers: int) -> PackageReader:
    """Read the meta file and check the data files; raises PackageError naming the problem."""
    reader = open_package_reader(meta_path)
    how = "sizes and sha256" if verify == "full" else "sizes"
    events(
        Message(
            "info", f"checking {meta_path.name}: {len(reader.meta.datafiles)} data file(s), {how}"
        )
    )
    reader.verify(full=verify == "full", workers=workers)
    return reader


def select_images(
    reader: PackageReader, subset: list[ListEntry] | None, origin: str
) -> list[ListEntry]:
    """All images of the package, or those the subset names (a line without tag: every tag)."""
    images = reader.meta.images
    if subset is None:
        return [
            ListEntry(i, f"{img.repository}:{img.tag}", _ref(img.repository, img.tag, img.digest))
            for i, img in enumerate(images, start=1)
        ]
    chosen, problems = [], []
    for entry in subset:
        want = entry.source
        found = [
            img
            for img in images
            if img.repository == want.repository
            and (want.tag is None or img.tag == want.tag)
            and (want.digest is None or img.digest == str(want.digest))
        ]
        if not found:
            problems.append(f"{origin}, line {entry.line}: {want} is not in {reader.name}")
        chosen += [
            ListEntry(
                entry.line, entry.text, _ref(img.repository, img.tag, img.digest), entry.rename
            )
            for img in found
        ]
    if problems:
        have = ", ".join(f"{i.repository}:{i.tag}" for i in images[:10])
        raise InputError(
            "\n".join(problems)
            + f"\nThe package holds: {have}"
            + (" …" if len(images) > 10 else "")
        )
    return chosen


def _ref(repository: str, tag: str | None, digest: str) -> Reference:
    return Reference("", repository, tag, None if tag else Digest.parse(digest))


def run_load(
    config: Config,
    meta_path: Path,
    target_cfgs: list[RegistryConfig],
    subset: list[ListEntry] | None,
    options: LoadOptions,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> RunResult:
    """Blocking. Nothing is pushed unless the package verified and its base is in place."""
    opts = options.transfer
    tally = Tally(events)
    reader = open_verified(meta_path, options.verify, tally, opts.workers)
    entries = select_images(reader, subset, origin)
    targets = [open_target(config, t) for t in target_cfgs]
    try:
        pairs = pair_references(entries, "", targets, origin)
        in_base = [p for p in pairs if reader.blob_map_entry(p[1]).in_base]
        skipped = _images_in_base(reader, in_base, targets, opts.policy, cancel)
        transfer = Transfer(reader, targets, opts.policy, cancel, tally, opts.workers)
        plan = transfer.plan([p for p in pairs if p not in in_base])
        _check_base_blobs(reader, plan, targets, opts.policy, cancel)
        for row in skipped:
            tally(ImageDone(row.line, row.source, row.target, row.status))
        results = transfer.execute(plan)
    finally:
        for t in targets:
            t.sink.close()
    return tally.result(skipped + results, cancel)


def _base_name(reader: PackageReader) -> str:
    return reader.meta.base.file if reader.meta.base else "its base package"


def _images_in_base(
    reader: PackageReader,
    pairs: list[Pairing],
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> list[ImageResult]:
    """Images an incremental package leaves wholly to its base: the target must have them."""
    rows, missing = [], []
    for entry, src, dsts in pairs:
        digest = reader.blob_map_entry(src).digest
        for i, dst in enumerate(dsts):
            there = _manifest_digest(targets[i], dst, policy, cancel)
            if there is not None and str(there) == digest:
                rows.append(
                    ImageResult(entry.line, str(src), str(dst), targets[i].name, "skipped", digest)
                )
            else:
                missing.append(f"{dst} on {targets[i].name}")
    if missing:
        raise PackageError(
            f"{reader.name} is incremental and leaves {len(missing)} image(s) to its base "
            f"package, but the target lacks them ({', '.join(missing[:3])}). "
            f"Load {_base_name(reader)} first, then this package."
        )
    return rows


def _check_base_blobs(
    reader: PackageReader,
    plan: TransferPlan,
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> None:
    blobs = reader.meta.blob_map()
    missing = 0
    for image in plan.images:
        for blob in image.blobs:
            record = blobs.get(str(blob.digest))
            if record is None or not record.in_base:
                continue
            for d in image.deliveries:
                if d.up_to_date:
                    continue
                sink = targets[d.target].sink
                if not _has_blob(sink, d.ref.repository, blob, policy, cancel):
                    missing += 1
    if missing:
        raise PackageError(
            f"{reader.name} is incremental: {missing} layer(s) it leaves to its base package are "
            f"not in the target. Load {_base_name(reader)} first, then this package."
        )


def _manifest_digest(
    target: Target, ref: Reference, policy: RetryPolicy, cancel: CancelToken
) -> Digest | None:
    return policy.run(
        lambda: target.sink.manifest_digest(ref.repository, ref.tag_or_digest), cancel
    )


def _has_blob(
    sink: BlobSink, repository: str, blob: Descriptor, policy: RetryPolicy, cancel: CancelToken
) -> bool:
    return policy.run(lambda: sink.has_blob(repository, blob), cancel)
