"""``cache info`` and ``cache prune``: look after the local blob cache."""

from __future__ import annotations

from pathlib import Path

from imageferry.core.config import Config
from imageferry.core.errors import InputError
from imageferry.engine.locations import (
    BlobCache,
    CacheInfo,
    PruneResult,
    blob_cache,
    cache_folder,
)

__all__ = ["cache_folder", "cache_info", "cache_prune", "resolve_cache"]


def resolve_cache(config: Config, override: Path | None) -> BlobCache:
    folder = cache_folder(config, override)
    if folder is None:
        raise InputError(
            "no cache configured: add 'cache: {pathname: cache}' to cfg.yaml or give --cache DIR"
        )
    return blob_cache(config, folder)


def cache_info(config: Config, override: Path | None) -> CacheInfo:
    return resolve_cache(config, override).info()


def cache_prune(config: Config, override: Path | None) -> PruneResult:
    return resolve_cache(config, override).prune()
