"""Save (下载): write listed images from a source registry into an offline package."""

from __future__ import annotations

import hashlib
import json
from dataclasses import field
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import Cancelled, InputError
from imageferry.core.events import EventSink, ImageDone, say
from imageferry.core.filenames import check_file_prefix
from imageferry.core.filesize import parse_size
from imageferry.core.imagelist import ListEntry
from imageferry.core.lazydata import quick_dataclass
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import (
    ImageRecord,
    Item,
    PackageWriter,
    ReferrerRecord,
    Target,
    open_cache,
    open_package_writer,
    open_source,
)
from imageferry.engine.plan import TransferPlan
from imageferry.engine.referrers import records_of
from imageferry.engine.transfer import Transfer
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.pairing import Pairing, pair_names
from imageferry.jobs.results import RunResult
from imageferry.jobs.tally import Tally, start_stage


@quick_dataclass(frozen=True)
class SaveOptions:
    """Where and how a package is written."""

    outdir: Path
    prefix: str = "img"
    base: Path | None = None
    single_file: bool = False
    compression: str = "none"
    max_file_size: int | None = None  # bytes no data file may pass; None: no limit
    transfer: TransferOptions = field(default_factory=TransferOptions)


def save_options(
    config: Config,
    transfer: TransferOptions,
    *,
    outdir: Path | None = None,
    prefix: str | None = None,
    base: Path | None = None,
    single_file: bool = False,
    compress: str | None = None,
    max_file_size: str | int | None = None,
) -> SaveOptions:
    """What a front end chose, else cfg.yaml (``outdir`` default: cfg.yaml's folder).

    ``max_file_size`` is bytes or text like ``2G``, ``4GiB``, ``fat32`` (see
    :func:`~imageferry.core.filesize.parse_size`); raises InputError for junk.
    """
    if base is not None and not base.is_file():
        raise InputError(f"base package {base}: no such meta file (give the *_meta.yaml file)")
    return SaveOptions(
        outdir=outdir if outdir is not None else config.folder,
        prefix=check_file_prefix(prefix, "--prefix") if prefix else config.outprefix,
        base=base,
        single_file=single_file or config.singlefile,
        compression=compress or config.compressor or "none",
        max_file_size=_limit(config, max_file_size),
        transfer=transfer,
    )


def _limit(config: Config, chosen: str | int | None) -> int | None:
    """None: cfg.yaml's ``maxfilesize``; ``none`` (or 0): no limit; else a size."""
    if chosen is None:
        return config.maxfilesize
    if str(chosen).strip().lower() in ("none", "0"):
        return None
    return parse_size(chosen)


def run_save(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    options: SaveOptions,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> RunResult:
    """Blocking. Writes the meta file only when every image is in the package."""
    opts = options.transfer
    cache = open_cache(config, opts.cache)
    source = open_source(config, source_cfg, cache)
    tally = Tally(events)
    files = 1 if options.single_file else opts.workers
    writer: PackageWriter | None = None
    try:
        pairs = pair_names(entries, source.host, [("", None)], origin)
        writer = open_package_writer(
            options.outdir,
            options.prefix,
            _fingerprint(source.host, pairs, options),
            base_meta=options.base,
            source=source.host,
            compression=options.compression,
            files=files,
            max_file_size=options.max_file_size,
        )
        if writer.resumed:
            tally(say("info", "resuming the unfinished package {name}", name=writer.stem))
        transfer = Transfer(
            source, [Target(writer, "", None)], opts.policy, cancel, tally, opts.workers
        )
        plan = transfer.plan(pairs, opts.platforms, opts.referrers)
        if any(image.error for image in plan.images):
            return _unfinished(plan, tally, cancel)
        if not writer.prepare(_items(plan)):
            tally(say("warning", "the source changed since the unfinished save; starting over"))
            plan = transfer.plan(pairs, opts.platforms, opts.referrers)
        result = tally.result(transfer.execute(plan), cancel)
        if not result.ok:
            return result
        total = sum(item.size for item in _items(plan))
        progress = start_stage(tally, cancel, "finishing", total)
        meta = writer.finish(_records(plan), progress, _referrer_records(plan))
        return tally.result(result.images, cancel, package=meta, files=_data_files(writer, meta))
    except Cancelled:
        return tally.result([], cancel)  # a rerun resumes from the journal
    finally:
        if writer is not None:
            writer.close()  # what the journal holds in memory: a rerun resumes from it
        source.close()
        if cache is not None:
            cache.prune()


def _unfinished(plan: TransferPlan, tally: Tally, cancel: CancelToken) -> RunResult:
    """Some image cannot be saved: write nothing, say why for every image."""
    rows = [
        ImageResult(
            i.entry.line,
            str(i.source),
            str(d.ref),
            "package",
            "failed" if i.error else "cancelled",
            error=i.error or "not saved: another image of the list failed",
        )
        for i in plan.images
        for d in i.deliveries
    ]
    for r in rows:
        tally(ImageDone(r.line, r.source, r.target, r.status, r.error, r.target_name))
    tally(say("warning", "no package written: every image must be readable first"))
    return tally.result(rows, cancel)


def _fingerprint(host: str, pairs: list[Pairing], options: SaveOptions) -> str:
    """What makes two saves the same package (-j is left out: a rerun may change it)."""
    doc: dict[str, object] = {
        "source": host,
        "images": [[str(src), str(dsts[0])] for _, src, dsts in pairs],
        "base": str(options.base.resolve()) if options.base else None,
        "compression": options.compression,
        "single_file": options.single_file,
        "platforms": [str(p) for p in options.transfer.platforms],
        "referrers": [
            options.transfer.referrers.enabled,
            *options.transfer.referrers.artifact_types,
        ],
    }
    if options.max_file_size:  # only then: an older unfinished save still resumes
        doc["max_file_size"] = options.max_file_size
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _items(plan: TransferPlan) -> list[Item]:
    items: dict[str, Item] = {}
    for image in plan.images:
        for m in image.manifests:
            items[str(m.digest)] = Item(str(m.digest), m.size, m.media_type)
        for b in image.blobs:
            items.setdefault(str(b.digest), Item(str(b.digest), b.size, b.media_type))
        for r in image.referrers:
            for m in r.manifests:
                items[str(m.digest)] = Item(str(m.digest), m.size, m.media_type)
            for b in r.blobs:
                items.setdefault(str(b.digest), Item(str(b.digest), b.size, b.media_type))
    return list(items.values())


def _records(plan: TransferPlan) -> list[ImageRecord]:
    records: dict[tuple[str, str | None], ImageRecord] = {}
    for image in plan.images:
        ref = image.deliveries[0].ref
        records.setdefault(
            (ref.repository, ref.tag or str(image.top.digest)),
            ImageRecord(
                repository=ref.repository,
                tag=ref.tag,
                digest=str(image.top.digest),
                media_type=image.top.media_type,
                source=str(image.source),
            ),
        )
    return list(records.values())


def _referrer_records(plan: TransferPlan) -> list[ReferrerRecord]:
    """Every image's referrers, once per (repository, referrer, tag), subjects first."""
    records: dict[tuple[str, str, str | None], ReferrerRecord] = {}
    for image in plan.images:
        repository = image.deliveries[0].ref.repository
        for r in records_of(repository, image.top.digest, image.referrers):
            records.setdefault((r.repository, r.digest, r.tag), r)
    return list(records.values())


def _data_files(writer: PackageWriter, meta: Path) -> list[tuple[str, int]]:
    return [(p.name, p.stat().st_size) for p in sorted(meta.parent.glob(f"{writer.stem}_*"))]
