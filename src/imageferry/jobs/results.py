"""What a copy, save or load did: one row per image and target, plus totals."""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from imageferry.core.lazydata import quick_dataclass
from imageferry.engine.execute import ImageResult


@quick_dataclass(frozen=True)
class RunResult:
    images: list[ImageResult]
    seconds: float
    bytes_read: int
    blobs: dict[str, int]
    cancelled: bool = False
    package: Path | None = None  # save: the meta file written
    files: list[tuple[str, int]] = field(default_factory=list)  # save: data files and sizes

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(r.status in ("copied", "skipped") for r in self.images)

    @property
    def referrers(self) -> int:
        """Signatures, SBOMs and attestations delivered (on every target together)."""
        return sum(r.referrers for r in self.images)

    def count(self, status: str) -> int:
        return sum(1 for r in self.images if r.status == status)
