"""Load (上传): verify an offline package, then push its images into target registries."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled, InputError, PackageError
from imageferry.core.events import EventSink, ImageDone, Message, say
from imageferry.core.imagelist import ListEntry
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Descriptor
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import (
    ImageRecord,
    PackageReader,
    Target,
    open_package_reader,
    open_targets,
)
from imageferry.engine.plan import TransferPlan, blob_jobs, unique_pairings
from imageferry.engine.transfer import Transfer
from imageferry.jobs.basecheck import ensure_base_blobs, images_in_base
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.pairing import Pairing, pair_references
from imageferry.jobs.results import RunResult
from imageferry.jobs.tally import Tally, start_stage


@quick_dataclass(frozen=True)
class LoadOptions:
    """How a load runs: the transfer's options and how the package is verified."""

    transfer: TransferOptions = field(default_factory=TransferOptions)
    verify: str = "full"  # "full": sha256 of every data file; "quick": sizes only


def verify_package(
    reader: PackageReader, verify: str, events: EventSink, cancel: CancelToken, workers: int
) -> None:
    """Check the data files; raises PackageError naming the problem, Cancelled when stopped."""
    full = verify == "full"
    count = len(reader.meta.datafiles)
    if full:
        events(
            say(
                "info",
                "checking {name}: {count} data file(s), sizes and sha256",
                name=reader.name,
                count=count,
            )
        )
    else:
        events(
            say(
                "info",
                "checking {name}: {count} data file(s), sizes",
                name=reader.name,
                count=count,
            )
        )
    total = sum(d.size for d in reader.meta.datafiles) if full else 0
    progress = start_stage(events, cancel, "verifying", total)
    reader.verify(full=full, workers=workers, progress=progress)
    for warning in reader.warnings:
        events(Message("warning", warning))


def package_path(path: Path) -> Path:
    """``path`` if it looks like a package's meta file; else PackageError saying what to give."""
    nearby = sorted(p.name for p in path.parent.glob("*_meta.y*ml")) if path.parent.is_dir() else []
    hint = f" (in {path.parent}: {', '.join(nearby[:5])})" if nearby else ""
    if path.is_dir():
        raise PackageError(f"{path} is a folder: give the package's *_meta.yaml file{hint}")
    if not path.is_file():
        raise PackageError(f"package {path} does not exist: give its *_meta.yaml file{hint}")
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise PackageError(
            f"{path.name} is not a package's meta file: give the *_meta.yaml file that was "
            f"saved with it{hint}"
        )
    return path


def select_images(
    reader: PackageReader, subset: list[ListEntry] | None, origin: str
) -> list[ListEntry]:
    """All images of the package, or those the subset names (a line without tag: every tag)."""
    images = reader.meta.images
    if subset is None:
        return [
            ListEntry(i, str(img.reference()), img.reference())
            for i, img in enumerate(images, start=1)
        ]
    by_repository: dict[str, list[ImageRecord]] = {}
    for img in images:
        by_repository.setdefault(img.repository, []).append(img)
    chosen, problems = [], []
    for entry in subset:
        want = entry.source
        found = [
            img
            for img in by_repository.get(want.repository, [])
            if (want.tag is None or img.tag == want.tag)
            and (want.digest is None or img.digest == str(want.digest))
        ]
        if not found:
            problems.append(f"{origin}, line {entry.line}: {want} is not in {reader.name}")
        chosen += [
            ListEntry(entry.line, entry.text, img.reference(), entry.rename) for img in found
        ]
    if problems:
        have = ", ".join(f"{i.repository}:{i.tag}" for i in images[:10])
        raise InputError(
            "\n".join(problems)
            + f"\nThe package holds: {have}"
            + (" …" if len(images) > 10 else "")
        )
    return chosen


def _with_base_referrers(
    reader: PackageReader,
    transfer: Transfer,
    plan: TransferPlan,
    in_base: list[Pairing],
    skipped: list[ImageResult],
    opts: TransferOptions,
) -> tuple[TransferPlan, list[ImageResult]]:
    """``plan`` plus the referrers this package carries for images its base delivered; the
    in-base rows less those whose referrers are now planned (their plan reports them)."""
    tops = [reader.blob_map_entry(src) for _, src, _ in in_base]
    descs = [Descriptor(t.media_type, Digest.parse(t.digest), t.size) for t in tops]
    extra = transfer.plan_referrers_of_present(in_base, descs, opts.referrers)
    planned = {(i.entry.line, str(d.ref)) for i in extra.images for d in i.deliveries}
    rows = [r for r in skipped if (r.line, r.target) not in planned]
    images = plan.images + extra.images
    return TransferPlan(images, blob_jobs(images)), rows


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
    reader = open_package_reader(meta_path)
    targets: list[Target] = []
    skipped: list[ImageResult] = []
    results: list[ImageResult] = []
    try:
        verify_package(reader, options.verify, tally, cancel, opts.workers)
        entries = select_images(reader, subset, origin)
        targets = open_targets(config, target_cfgs, tally)
        pairs = unique_pairings(pair_references(entries, "", targets, origin), tally)
        in_base: list[Pairing] = []
        carried: list[Pairing] = []
        for pair in pairs:
            (in_base if reader.blob_map_entry(pair[1]).in_base else carried).append(pair)
        skipped = images_in_base(reader, in_base, targets, opts.policy, cancel)
        transfer = Transfer(reader, targets, opts.policy, cancel, tally, opts.workers)
        plan = transfer.plan(carried, (), opts.referrers)
        if in_base and opts.referrers.enabled:  # new signatures of images the base delivered
            plan, skipped = _with_base_referrers(reader, transfer, plan, in_base, skipped, opts)
        mounted = ensure_base_blobs(reader, plan, targets, opts.policy, cancel)
        if mounted:
            tally(
                say("info", "linked {count} base layer(s) from other repositories", count=mounted)
            )
        for row in skipped:
            tally(
                ImageDone(row.line, row.source, row.target, row.status, row.error, row.target_name)
            )
        results = transfer.execute(plan)
    except Cancelled:
        pass  # the result says so; a rerun resumes
    finally:
        reader.close()
        for t in targets:
            t.sink.close()
    return tally.result(skipped + results, cancel)
