"""Options every transfer job shares, and how cfg.yaml fills in what a front end leaves out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imageferry.core.config import Config
from imageferry.core.errors import InputError
from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy
from imageferry.engine.locations import cache_folder


@dataclass(frozen=True)
class TransferOptions:
    workers: int = 5
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    platforms: tuple[Platform, ...] = ()
    cache: Path | None = None  # folder of the blob cache; None: no cache


def workers_from(config: Config, maxconn: int | None) -> int:
    n = maxconn if maxconn is not None else config.maxconn
    if not 1 <= n <= 64:
        raise InputError(f"connections (maxconn, -j) must be between 1 and 64, not {n}")
    return n


def policy_from(config: Config, retries: int | None) -> RetryPolicy:
    n = retries if retries is not None else config.retries
    if not 0 <= n <= 20:
        raise InputError(f"retries (--retries) must be between 0 and 20, not {n}")
    return RetryPolicy(retries=n)


def transfer_options(
    config: Config,
    *,
    maxconn: int | None = None,
    retries: int | None = None,
    platforms: list[str] | tuple[str, ...] = (),
    cache: Path | None = None,
    no_cache: bool = False,
) -> TransferOptions:
    """What a front end chose, else cfg.yaml's values. Raises InputError on bad values."""
    return TransferOptions(
        workers=workers_from(config, maxconn),
        policy=policy_from(config, retries),
        platforms=tuple(Platform.parse(p) for p in platforms),
        cache=cache_folder(config, cache, no_cache),
    )
