"""Copy (直传): stream every listed image from a source registry to one or more targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.events import EventSink
from imageferry.core.imagelist import ListEntry
from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy
from imageferry.engine.execute import execute_plan
from imageferry.engine.locations import open_cache, open_source, open_target
from imageferry.engine.plan import resolve_plan
from imageferry.jobs.pairing import pair_references
from imageferry.jobs.results import RunResult
from imageferry.jobs.tally import Tally


@dataclass(frozen=True)
class CopyOptions:
    workers: int = 5
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    platforms: tuple[Platform, ...] = ()
    cache: Path | None = None  # folder of the blob cache; None: no cache


def run_copy(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    target_cfgs: list[RegistryConfig],
    options: CopyOptions,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> RunResult:
    """Blocking; call from a worker thread in a GUI. Stop with ``cancel.cancel()``."""
    cache = open_cache(config, options.cache)
    source = open_source(config, source_cfg, cache)
    targets = [open_target(config, t) for t in target_cfgs]
    tally = Tally(events)
    try:
        pairs = pair_references(entries, source.host, targets, origin)
        plan = resolve_plan(
            pairs,
            source,
            targets,
            platforms=options.platforms,
            policy=options.policy,
            cancel=cancel,
            events=tally,
            workers=options.workers,
        )
        results = execute_plan(
            plan,
            source,
            targets,
            policy=options.policy,
            cancel=cancel,
            events=tally,
            workers=options.workers,
        )
    finally:
        source.close()
        if cache is not None:
            cache.prune()
        for t in targets:
            t.sink.close()
    return RunResult(results, tally.seconds, tally.bytes_read, dict(tally.blobs), cancel.cancelled)
