"""Check (校验): what each line resolves to, and whether source and targets have it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled, ImageFerryError, NotFoundError
from imageferry.core.events import EventSink, ImageChecked, TargetState, TargetStateName
from imageferry.core.imagelist import ListEntry, on_target
from imageferry.core.manifest import Platform
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.engine.locations import (
    PackageMeta,
    Registry,
    Target,
    open_package_reader,
    open_registry,
    open_targets,
)
from imageferry.engine.plan import resolve_manifests, target_digest
from imageferry.engine.referrers import (
    ReferrerLookup,
    record_kinds,
    referrer_kinds,
    source_lookup,
)
from imageferry.jobs.load import verify_package
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.pairing import Pairing, pair_references

NOT_FOUND = "not found in the source registry"


@dataclass(frozen=True)
class CheckReport:
    """The rows in list order; ``cancelled`` when stopped (rows then holds what was done)."""

    rows: list[ImageChecked]
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(r.ok for r in self.rows)


def run_check(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    target_cfgs: list[RegistryConfig],
    options: TransferOptions,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> CheckReport:
    """Blocking. Each line's row is also sent to ``events`` as soon as it is known."""
    source = open_registry(config, source_cfg, writable=False)
    targets: list[Target] = []

    lookup = source_lookup(source, cancel)

    def one(pair: Pairing) -> ImageChecked:
        row = _with_referrers(_check_one(pair, source, targets, options, cancel), pair, lookup)
        events(row)
        return row

    rows: list[ImageChecked] = []
    try:
        targets = open_targets(config, target_cfgs, events)
        pairs = pair_references(entries, source.host, targets, origin)
        with ThreadPoolExecutor(max_workers=options.workers, thread_name_prefix="check") as pool:
            futures = [pool.submit(one, pair) for pair in pairs]
            for f in futures:
                try:
                    rows.append(wait_for(f, cancel))
                except Cancelled:
                    pass
    finally:
        source.close()
        for t in targets:
            t.sink.close()
    return CheckReport(rows, cancel.cancelled)


def _check_one(
    pair: Pairing,
    source: Registry,
    targets: list[Target],
    options: TransferOptions,
    cancel: CancelToken,
) -> ImageChecked:
    entry, src, dsts = pair
    policy = options.policy
    try:
        digest = policy.run(lambda: _source_digest(source, src, options.platforms), cancel)
    except Cancelled:
        raise
    except ImageFerryError as exc:
        return ImageChecked(entry.line, str(src), None, (), str(exc))
    states = tuple(_state(t, d, digest, policy, cancel) for t, d in zip(targets, dsts, strict=True))
    if digest is None:
        return ImageChecked(entry.line, str(src), None, states, NOT_FOUND, missing=True)
    return ImageChecked(entry.line, str(src), str(digest), states)


def _source_digest(
    source: Registry, src: Reference, platforms: tuple[Platform, ...]
) -> Digest | None:
    """What a copy with ``platforms`` would push under the tag (None: no such image)."""
    if not platforms:
        return source.manifest_digest(src.repository, src.tag_or_digest)
    try:
        manifests, _blobs = resolve_manifests(source, src, platforms)
    except NotFoundError:
        return None
    return manifests[-1].digest


def _with_referrers(
    row: ImageChecked, pair: Pairing, lookup: ReferrerLookup | None
) -> ImageChecked:
    """``row`` with what refers to the image (its top manifest) in the source."""
    if row.digest is None or lookup is None:
        return row
    try:
        kinds = referrer_kinds(lookup, pair[1].repository, Digest.parse(row.digest))
    except Cancelled:
        raise
    except ImageFerryError as exc:
        kinds = (f"cannot list referrers: {exc}",)
    return replace(row, referrers=kinds)


def _state(
    target: Target, ref: Reference, digest: Digest | None, policy: RetryPolicy, cancel: CancelToken
) -> TargetState:
    try:
        there = target_digest(target, ref, policy, cancel)
    except Cancelled:
        raise
    except ImageFerryError as exc:
        return TargetState(target.name, str(ref), "error", str(exc))
    state: TargetStateName
    if there is None:
        state = "missing"
    else:
        state = "same" if there == digest else "differs"
    return TargetState(target.name, str(ref), state)


@dataclass(frozen=True)
class PackageRow:
    """One image of a package, and its state on one target."""

    name: str
    digest: str
    target_name: str | None = None
    state: TargetStateName | None = None
    error: str | None = None
    referrers: tuple[str, ...] = ()  # what travels with it (signatures, SBOMs …)


@dataclass(frozen=True)
class PackageReport:
    """A verified package: its meta file and a row per image (and target)."""

    path: Path
    meta: PackageMeta
    rows: list[PackageRow]
    cancelled: bool = False
    containers: dict[str, str] = field(default_factory=dict)  # data file -> tar, gzip, zstd …

    @property
    def ok(self) -> bool:
        """Every image verified, and on every target asked about."""
        return not self.cancelled and all(r.state in (None, "same") for r in self.rows)

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "cancelled": self.cancelled,
            "package": str(self.path),
            "kind": self.meta.kind,
            "base": self.meta.base.file if self.meta.base else None,
            "datafiles": [
                {**d.model_dump(), "container": self.containers.get(d.name)}
                for d in self.meta.datafiles
            ],
            "images": [r.__dict__ for r in self.rows],
        }


def check_package(
    config: Config,
    meta_path: Path,
    target_cfgs: list[RegistryConfig],
    *,
    verify: str,
    policy: RetryPolicy,
    cancel: CancelToken,
    events: EventSink,
    workers: int = 4,
) -> PackageReport:
    """Verify a package (raises PackageError) and say what each target already has."""
    reader = open_package_reader(meta_path)
    targets: list[Target] = []
    rows: list[PackageRow] = []
    try:
        verify_package(reader, verify, events, cancel, workers)
        targets = open_targets(config, target_cfgs, events)
        referrers = record_kinds(reader.meta)
        for img in reader.meta.images:
            ref = img.reference()
            kinds = referrers.get((img.repository, img.digest), ())
            if not targets:
                rows.append(PackageRow(str(ref), img.digest, referrers=kinds))
                continue
            for t in targets:
                dst = on_target(ref, t.host, t.namespace)
                state = _state(t, dst, Digest.parse(img.digest), policy, cancel)
                rows.append(
                    PackageRow(state.ref, img.digest, t.name, state.state, state.error, kinds)
                )
    except Cancelled:
        pass
    finally:
        reader.close()
        for t in targets:
            t.sink.close()
    return PackageReport(meta_path, reader.meta, rows, cancel.cancelled, dict(reader.containers))
