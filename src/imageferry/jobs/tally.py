"""Counts what a run did, from its events (for the summary line and --json)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import field
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.events import (
    BlobDone,
    BlobProgress,
    Event,
    EventSink,
    StageName,
    StageProgress,
    StageStarted,
    say,
)
from imageferry.core.lazydata import quick_dataclass
from imageferry.engine.execute import ImageResult
from imageferry.jobs.results import RunResult


@quick_dataclass
class Tally:
    """Wraps an event sink; thread-safe."""

    forward: EventSink
    started: float = field(default_factory=time.monotonic)
    bytes_read: int = 0
    blobs: dict[str, int] = field(default_factory=lambda: {"copied": 0, "skipped": 0, "mounted": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, BlobProgress):
                self.bytes_read += event.nbytes
            elif isinstance(event, BlobDone):
                self.blobs[event.outcome] = self.blobs.get(event.outcome, 0) + 1
        self.forward(event)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def result(
        self,
        images: list[ImageResult],
        cancel: CancelToken,
        package: Path | None = None,
        files: list[tuple[str, int]] | None = None,
    ) -> RunResult:
        """The run's result with this tally's totals (and, with several targets, one
        line per target that did not get everything)."""
        self._per_target(images)
        return RunResult(
            images,
            self.seconds,
            self.bytes_read,
            dict(self.blobs),
            cancel.cancelled,
            package,
            files or [],
        )

    def _per_target(self, images: list[ImageResult]) -> None:
        names = list(dict.fromkeys(r.target_name for r in images))
        if len(names) < 2:
            return
        for name in names:
            rows = [r for r in images if r.target_name == name]
            done = sum(1 for r in rows if r.status in ("copied", "skipped"))
            if done < len(rows):
                self(
                    say(
                        "warning",
                        "{name}: {done} of {total} image(s) delivered",
                        name=name,
                        done=done,
                        total=len(rows),
                    )
                )


def start_stage(
    events: EventSink, cancel: CancelToken, stage: StageName, total: int
) -> Callable[[int], None]:
    """Announce a long step; the returned callback reports its bytes and obeys ``cancel``."""
    events(StageStarted(stage, total))

    def progress(nbytes: int) -> None:
        cancel.check()
        events(StageProgress(nbytes))

    return progress
