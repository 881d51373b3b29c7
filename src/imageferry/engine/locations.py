"""The one factory of stores: turns configured registries into sources and sinks."""

from __future__ import annotations

from dataclasses import dataclass

from imageferry.core.config import Config, RegistryConfig
from imageferry.core.store import BlobSink
from imageferry.registry import Registry


@dataclass(frozen=True)
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
    )


def open_target(config: Config, cfg: RegistryConfig) -> Target:
    registry = open_registry(config, cfg, writable=True)
    return Target(registry, registry.host, cfg.repository)
