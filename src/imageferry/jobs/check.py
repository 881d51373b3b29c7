"""Check (校验): what each line resolves to, and whether source and targets have it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.imagelist import ListEntry
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.engine.locations import Target, open_registry, open_target
from imageferry.jobs.pairing import Pairing, pair_references


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
        error = None if digest else "not found in the source registry"
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
        there = policy.run(
            lambda: target.sink.manifest_digest(ref.repository, ref.tag_or_digest), cancel
        )
    except Cancelled:
        raise
    except ImageFerryError as exc:
        return TargetState(target.name, str(ref), "error", str(exc))
    if there is None:
        return TargetState(target.name, str(ref), "missing")
    return TargetState(target.name, str(ref), "same" if there == digest else "differs")
