"""Options every transfer job shares, and how cfg.yaml fills in what a front end leaves out."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from imageferry.core.config import Config
from imageferry.core.errors import InputError
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy
from imageferry.engine.locations import cache_folder
from imageferry.engine.referrers import ReferrerChoice


@quick_dataclass(frozen=True)
class TransferOptions:
    workers: int = 5
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    platforms: tuple[Platform, ...] = ()
    cache: Path | None = None  # folder of the blob cache; None: no cache
    referrers: ReferrerChoice = field(default_factory=ReferrerChoice)


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
    no_referrers: bool = False,
    artifact_types: list[str] | tuple[str, ...] = (),
) -> TransferOptions:
    """What a front end chose, else cfg.yaml's values. Raises InputError on bad values."""
    return TransferOptions(
        workers=workers_from(config, maxconn),
        policy=policy_from(config, retries),
        platforms=tuple(Platform.parse(p) for p in platforms),
        cache=cache_folder(config, cache, no_cache),
        referrers=referrer_choice(config, no_referrers, artifact_types),
    )


def referrer_choice(
    config: Config, no_referrers: bool, artifact_types: list[str] | tuple[str, ...]
) -> ReferrerChoice:
    """``--no-referrers`` or cfg.yaml's ``referrers: false`` turn them off; ``--artifact-type``
    (repeatable) keeps only those types. Raises InputError for a type that cannot be one."""
    for kind in artifact_types:
        if not kind or "/" not in kind or any(c.isspace() for c in kind) or len(kind) > 255:
            raise InputError(
                f"--artifact-type '{kind[:100]}' is not a media type (like "
                "application/vnd.dev.cosign.simplesigning.v1+json)"
            )
    enabled = not no_referrers and config.referrers
    return ReferrerChoice(enabled, tuple(dict.fromkeys(artifact_types)))
