"""Options every transfer job shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy


@dataclass(frozen=True)
class TransferOptions:
    workers: int = 5
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    platforms: tuple[Platform, ...] = ()
    cache: Path | None = None  # folder of the blob cache; None: no cache
