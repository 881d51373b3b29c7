"""The one factory of stores: turns configured registries into sources and sinks."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imageferry.core.cancel import CancelToken
from imageferry.core.config import CacheConfig, Config, RegistryConfig
from imageferry.core.events import EventSink, Message
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.store import BlobSink
from imageferry.registry import Registry
from imageferry.registry.tags import list_tags
from imageferry.registry.uploadbook import FILE_NAME as UPLOADS_FILE
from imageferry.registry.uploadbook import UploadBook

if TYPE_CHECKING:  # imported when used: a copy needs no package code, nor a cache unless set
    from imageferry.cache.store import BlobCache, CacheInfo, PruneResult
    from imageferry.cache.wrapper import CachedSource
    from imageferry.package.layout import Item
    from imageferry.package.meta import ImageRecord, PackageMeta, ReferrerRecord
    from imageferry.package.reader import PackageReader
    from imageferry.package.writer import PackageWriter

_LAZY = {  # name → module, for ``from imageferry.engine.locations import PackageMeta``
    "BlobCache": "imageferry.cache.store",
    "CacheInfo": "imageferry.cache.store",
    "PruneResult": "imageferry.cache.store",
    "CachedSource": "imageferry.cache.wrapper",
    "Item": "imageferry.package.layout",
    "ImageRecord": "imageferry.package.meta",
    "PackageMeta": "imageferry.package.meta",
    "ReferrerRecord": "imageferry.package.meta",
    "PackageReader": "imageferry.package.reader",
    "PackageWriter": "imageferry.package.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BlobCache",
    "blob_cache",
    "distinct_registries",
    "CacheInfo",
    "PruneResult",
    "CachedSource",
    "ImageRecord",
    "Item",
    "PackageMeta",
    "PackageReader",
    "PackageWriter",
    "ReferrerRecord",
    "Target",
    "open_cache",
    "open_package_reader",
    "open_package_writer",
    "open_registry",
    "open_source",
    "open_target",
    "open_targets",
    "Registry",
    "repository_tags",
    "target_repositories",
]


@quick_dataclass(frozen=True)
class Target:
    """A sink plus how image names change on the way there."""

    sink: BlobSink
    host: str
    namespace: str | None

    @property
    def name(self) -> str:
        return self.sink.name


def open_registry(config: Config, cfg: RegistryConfig, *, writable: bool) -> Registry:
    return Registry(
        cfg,
        config_dir=config.folder,
        skiptlsverify=config.skiptlsverify,
        maxconn=config.maxconn,
        writable=writable,
        timeout=config.timeout,
    )


def distinct_registries(cfgs: list[RegistryConfig]) -> tuple[list[RegistryConfig], list[str]]:
    """``cfgs`` with each place (address and namespace) once; and the names given again."""
    seen: set[tuple[str, str, str]] = set()
    kept, again = [], []
    for cfg in cfgs:
        address = cfg.address
        key = (address.scheme, address.host, (cfg.repository or "").strip("/"))
        if key in seen:
            again.append(cfg.display_name)
            continue
        seen.add(key)
        kept.append(cfg)
    return kept, again


def open_target(config: Config, cfg: RegistryConfig) -> Target:
    registry = open_registry(config, cfg, writable=True)
    registry.uploads = UploadBook(config.folder / UPLOADS_FILE)  # docs/resume.md
    return Target(registry, registry.host, cfg.repository)


def open_targets(config: Config, cfgs: list[RegistryConfig], events: EventSink) -> list[Target]:
    """One target per place: a registry given twice (``--to a --to a``) is delivered to once."""
    kept, again = distinct_registries(cfgs)
    for name in again:
        events(Message("info", f"target {name} is given more than once: delivering to it once"))
    opened: list[Target] = []
    try:
        for cfg in kept:
            opened.append(open_target(config, cfg))
    except BaseException:  # a later one is misconfigured: close the ones already open
        for target in opened:
            target.sink.close()
        raise
    return opened


def open_package_writer(
    outdir: Path,
    prefix: str,
    fingerprint: str,
    *,
    base_meta: Path | None,
    source: str,
    compression: str,
    files: int,
    max_file_size: int | None = None,
) -> PackageWriter:
    """A package being saved (resumes an unfinished one with the same fingerprint)."""
    from imageferry.package.checksum import sha256_file
    from imageferry.package.legacymeta import is_legacy_meta
    from imageferry.package.meta import meta_from_data, read_meta_file
    from imageferry.package.writer import BaseInfo, PackageWriter

    base = None
    if base_meta is not None:
        data = read_meta_file(base_meta)
        if is_legacy_meta(data):  # image-transmit's: its reader only then
            from imageferry.package.legacy import legacy_blob_digests

            digests = legacy_blob_digests(data)
        else:
            digests = frozenset(b.digest for b in meta_from_data(data, base_meta).blobs)
        base = BaseInfo(base_meta, sha256_file(base_meta), digests)
    return PackageWriter.open(
        outdir,
        prefix,
        fingerprint,
        incremental=base,
        source=source,
        compression=compression,
        files=files,
        max_file_size=max_file_size,
    )


def open_package_reader(meta_path: Path) -> PackageReader:
    """A reader for an imageferry package, or for one image-transmit wrote."""
    from imageferry.package.legacymeta import is_legacy_meta
    from imageferry.package.meta import meta_from_data, read_meta_file
    from imageferry.package.reader import PackageReader

    data = read_meta_file(meta_path)
    if is_legacy_meta(data):  # image-transmit's: its reader (and container sniffing) only then
        from imageferry.package.legacy import LegacyPackageReader

        return LegacyPackageReader(meta_path, data)
    return PackageReader(meta_path, meta_from_data(data, meta_path))  # the file parsed once


def cache_folder(config: Config, override: Path | None, disabled: bool = False) -> Path | None:
    """The cache folder: ``--cache DIR``, else cfg.yaml's ``cache.pathname``, else none."""
    if disabled:
        return None
    if override is not None:
        return override
    if config.cache is not None:
        return config.folder / config.cache.pathname
    return None


def blob_cache(config: Config, folder: Path) -> BlobCache:
    """The blob cache in ``folder`` with cfg.yaml's limits (their defaults without a section)."""
    from imageferry.cache.store import BlobCache

    limits = config.cache or CacheConfig()
    return BlobCache(folder, limits.keepdays, limits.keepsize)


def open_cache(config: Config, folder: Path | None) -> BlobCache | None:
    """The blob cache in ``folder`` (pruned to its limits first), or None."""
    if folder is None:
        return None
    cache = blob_cache(config, folder)
    cache.prune()
    return cache


def open_source(
    config: Config, cfg: RegistryConfig, cache: BlobCache | None
) -> Registry | CachedSource:
    """The source registry, read through the cache when there is one."""
    registry = open_registry(config, cfg, writable=False)
    if cache is None:
        return registry
    from imageferry.cache.wrapper import CachedSource

    return CachedSource(registry, cache)


def target_repositories(target: Target, limit: int = 1000) -> list[str]:
    """What the target's catalog lists (a registry that allows it), else nothing."""
    sink = target.sink
    return sink.repositories(limit) if isinstance(sink, Registry) else []


def repository_tags(
    registry: Registry, repository: str, cancel: CancelToken, page_size: int = 1000
) -> list[str]:
    """Every tag of ``repository`` (paginated, bounded). Raises NotFoundError, RegistryError."""
    return list_tags(registry, repository, cancel, page_size)
