"""Copy (直传): stream every listed image from a source registry to one or more targets."""

from __future__ import annotations

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import Cancelled
from imageferry.core.events import EventSink
from imageferry.core.imagelist import ListEntry
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import open_cache, open_source, open_targets
from imageferry.engine.transfer import Transfer
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.pairing import pair_references
from imageferry.jobs.results import RunResult
from imageferry.jobs.tally import Tally


def run_copy(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    target_cfgs: list[RegistryConfig],
    options: TransferOptions,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> RunResult:
    """Blocking; call from a worker thread in a GUI. Stop with ``cancel.cancel()``."""
    cache = open_cache(config, options.cache)
    source = open_source(config, source_cfg, cache)
    targets = open_targets(config, target_cfgs, events)
    tally = Tally(events)
    results: list[ImageResult] = []
    try:
        transfer = Transfer(source, targets, options.policy, cancel, tally, options.workers, False)
        plan = transfer.plan(
            pair_references(entries, source.host, targets, origin),
            options.platforms,
            options.referrers,
        )
        results = transfer.execute(plan)
    except Cancelled:
        pass  # stopped while planning: the result says so
    finally:
        source.close()
        if cache is not None:
            cache.prune()
        for t in targets:
            t.sink.close()
    return tally.result(results, cancel)
