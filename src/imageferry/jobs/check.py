"""Check (校验): what each line resolves to, and whether source and targets have it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import ignore_events
from imageferry.core.imagelist import ListEntry, on_target
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.engine.locations import (
    PackageMeta,
    Target,
    open_package_reader,
    open_registry,
    open_target,
)
from imageferry.engine.plan import target_digest
from imageferry.jobs.load import verify_package
from imageferry.jobs.pairing import Pairing, pair_references

NOT_FOUND = "not found in the source registry"


@dataclass(frozen=True)
class TargetState:
    target_name: str
    ref: str
    state: str  # "same", "differs", "missing", "error"
    error: str | None = None


@dataclass(frozen=True)
class CheckRow:
    line: int
    source: str
    digest: str | None
    targets: tuple[TargetState, ...]
    error: str | None = None

    @property
    def exists(self) -> bool:
        return self.digest is not None


def run_check(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    target_cfgs: list[RegistryConfig],
    *,
    policy: RetryPolicy,
    cancel: CancelToken,
    workers: int = 5,
    origin: str = "image list",
) -> list[CheckRow]:
    source = open_registry(config, source_cfg, writable=False)
    targets = [open_target(config, t) for t in target_cfgs]
    pairs = pair_references(entries, source.host, targets, origin)

    def one(pair: Pairing) -> CheckRow:
        entry, src, dsts = pair
        try:
            digest = policy.run(
                lambda: source.manifest_digest(src.repository, src.tag_or_digest), cancel
            )
        except Cancelled:
            raise
        except ImageFerryError as exc:
            return CheckRow(entry.line, str(src), None, (), str(exc))
        states = tuple(
            _state(t, d, digest, policy, cancel) for t, d in zip(targets, dsts, strict=True)
        )
        error = None if digest else NOT_FOUND
        return CheckRow(entry.line, str(src), str(digest) if digest else None, states, error)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            futures = [pool.submit(one, pair) for pair in pairs]
            return [wait_for(f, cancel) for f in futures]
    finally:
        source.close()
        for t in targets:
            t.sink.close()


def _state(
    target: Target, ref: Reference, digest: Digest | None, policy: RetryPolicy, cancel: CancelToken
) -> TargetState:
    try:
        there = target_digest(target, ref, policy, cancel)
    except Cancelled:
        raise
    except ImageFerryError as exc:
        return TargetState(target.name, str(ref), "error", str(exc))
    if there is None:
        return TargetState(target.name, str(ref), "missing")
    return TargetState(target.name, str(ref), "same" if there == digest else "differs")


@dataclass(frozen=True)
class PackageRow:
    name: str
    digest: str
    target_name: str | None = None
    state: str | None = None  # "same", "differs", "missing", "error"


@dataclass(frozen=True)
class PackageReport:
    path: Path
    meta: PackageMeta
    rows: list[PackageRow]

    def to_json(self) -> dict:
        return {
            "package": str(self.path),
            "kind": self.meta.kind,
            "base": self.meta.base.file if self.meta.base else None,
            "datafiles": [d.model_dump() for d in self.meta.datafiles],
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
) -> PackageReport:
    """Verify a package (raises PackageError) and say what each target already has."""
    reader = open_package_reader(meta_path)
    targets: list[Target] = []
    rows = []
    try:
        verify_package(reader, verify, ignore_events, workers=4)
        targets = [open_target(config, t) for t in target_cfgs]
        for img in reader.meta.images:
            ref = img.reference()
            if not targets:
                rows.append(PackageRow(str(ref), img.digest))
                continue
            for t in targets:
                state = _state(
                    t,
                    on_target(ref, t.host, t.namespace),
                    Digest.parse(img.digest),
                    policy,
                    cancel,
                )
                rows.append(PackageRow(state.ref, img.digest, t.name, state.state))
    finally:
        reader.close()
        for t in targets:
            t.sink.close()
    return PackageReport(meta_path, reader.meta, rows)
