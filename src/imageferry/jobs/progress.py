"""The progress model both front ends draw: counts per target, bytes, speed, ETA.

``RunProgress`` is an event sink (thread-safe): feed it every event of a run
and read :meth:`snapshot` whenever the screen is redrawn — the CLI's bar,
its plain lines and the window all show the same numbers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import field

from imageferry.core.events import (
    BlobDone,
    BlobProgress,
    Event,
    ImageChecked,
    ImageDone,
    PlanReady,
    StageName,
    StageProgress,
    StageStarted,
    WatchRound,
)
from imageferry.core.lazydata import quick_dataclass


@quick_dataclass(frozen=True)
class TargetCount:
    name: str
    done: int = 0  # finished, whatever the outcome
    failed: int = 0
    total: int = 0
    stopped: int = 0  # cancelled before they were complete

    @property
    def delivered(self) -> int:
        return self.done - self.failed - self.stopped


@quick_dataclass(frozen=True)
class ProgressSnapshot:
    stage: str  # "planning", "transferring", or a StageName
    images_done: int
    images_failed: int
    images_total: int
    targets: tuple[TargetCount, ...]
    bytes_done: int  # read from the source, plus planned bytes a target already had
    bytes_total: int
    bytes_read: int
    seconds: float

    @property
    def speed(self) -> float:
        """Bytes read per second since the run started."""
        return self.bytes_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """0..1, or None while the total is unknown."""
        if not self.bytes_total:
            if self.images_total:
                return min(1.0, self.images_done / self.images_total)
            return None
        return min(1.0, self.bytes_done / self.bytes_total)

    @property
    def eta(self) -> float | None:
        """Seconds left at the speed so far, or None when unknown."""
        left = self.bytes_total - self.bytes_done
        if self.speed <= 0 or left <= 0:
            return None
        return left / self.speed


@quick_dataclass
class RunProgress:
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stage: str = "planning"
    _per_image: int = 0  # images each target receives
    _targets: dict[str, list[int]] = field(default_factory=dict)  # name -> [done, failed, stopped]
    _bytes_read: int = 0
    _not_needed: int = 0  # planned bytes that targets already had (skipped, mounted)
    _seen: set[str] = field(default_factory=set)
    _bytes_total: int = 0
    _stage_bytes: int = 0
    _stage_total: int = 0
    _stage_started: float = 0.0
    _checked: list[int] = field(default_factory=lambda: [0, 0])  # check: done, failed

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, WatchRound):  # a watch: each round counts afresh
            self._reset()
        elif isinstance(event, BlobProgress):
            self._bytes_read += event.nbytes
        elif isinstance(event, StageProgress):
            self._stage_bytes += event.nbytes
        elif isinstance(event, BlobDone):
            if event.outcome != "copied" and event.digest not in self._seen:
                self._not_needed += event.size
            self._seen.add(event.digest)
        elif isinstance(event, PlanReady):
            self._stage = "transferring"
            self._per_image = event.images
            self._bytes_total = event.bytes_total
            for name in event.targets or ("",):
                self._targets.setdefault(name, [0, 0, 0])
        elif isinstance(event, ImageDone):
            counts = self._targets.setdefault(event.target_name, [0, 0, 0])
            counts[0] += 1
            counts[1] += event.status == "failed"
            counts[2] += event.status == "cancelled"
        elif isinstance(event, ImageChecked):
            self._checked[0] += 1
            self._checked[1] += not event.ok
        elif isinstance(event, StageStarted):
            self._begin_stage(event.stage, event.total)

    def _reset(self) -> None:
        self.started, self._stage, self._per_image = time.monotonic(), "planning", 0
        self._targets, self._seen, self._checked = {}, set(), [0, 0]
        self._bytes_read = self._not_needed = self._bytes_total = 0

    def _begin_stage(self, stage: StageName, total: int) -> None:
        self._stage, self._stage_bytes, self._stage_total = stage, 0, total
        self._stage_started = time.monotonic()

    def snapshot(self) -> ProgressSnapshot:
        """The numbers now; during a verifying or finishing stage, that stage's bytes."""
        with self._lock:
            now = time.monotonic()
            if self._stage in ("verifying", "finishing"):
                seconds = now - self._stage_started
                return self._counts(
                    self._stage_bytes, self._stage_total, self._stage_bytes, seconds
                )
            done = min(self._bytes_read + self._not_needed, self._bytes_total)
            return self._counts(done, self._bytes_total, self._bytes_read, now - self.started)

    def _counts(self, done: int, total: int, read: int, seconds: float) -> ProgressSnapshot:
        targets = tuple(
            TargetCount(name, d, f, self._per_image, c) for name, (d, f, c) in self._targets.items()
        )
        if self._checked[0]:
            images = (self._checked[0], self._checked[1], self._per_image)
        else:
            images = (
                sum(t.done for t in targets),
                sum(t.failed for t in targets),
                sum(t.total for t in targets),
            )
        return ProgressSnapshot(self._stage, *images, targets, done, total, read, seconds)

    def expect_images(self, count: int) -> None:
        """``check`` has no plan: say how many rows to expect."""
        with self._lock:
            self._per_image = count
