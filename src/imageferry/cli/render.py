"""Progress for people: rich bars on a terminal, plain lines otherwise, silence for --json.

The renderer is an event sink called from engine threads; it locks. Every
event also goes to the log file through the ``imageferry.run`` logger.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from imageferry.core.events import BlobDone, BlobProgress, Event, ImageDone, Message, PlanReady

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("imageferry.run")
PLAIN_INTERVAL = 5.0


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Renderer:
    def __init__(self, mode: str, out: TextIO | None = None) -> None:
        self.mode = mode  # "rich", "plain" or "quiet"
        self.out = out or sys.stderr
        self._lock = threading.Lock()
        self._total_images = 0
        self._done = 0
        self._failed = 0
        self._bytes = 0  # read from the source
        self._not_needed = 0  # planned bytes a target already had (skipped, mounted)
        self._seen: set[str] = set()
        self._total_bytes = 0
        self._started = time.monotonic()
        self._last_plain = self._started
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    @classmethod
    def for_output(cls, json_mode: bool) -> Renderer:
        if json_mode:
            return cls("quiet")
        return cls("rich" if sys.stderr.isatty() else "plain")

    def __enter__(self) -> Renderer:
        if self.mode == "rich":
            # rich is imported only for terminals: plain and JSON runs start faster
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.out),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("planning", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        elif self.mode == "plain":
            print(text, file=self.out, flush=True)

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, BlobProgress):
            self._bytes += event.nbytes
            self._update()
            return
        if isinstance(event, BlobDone):
            if event.outcome != "copied" and event.digest not in self._seen:
                self._not_needed += event.size
            self._seen.add(event.digest)
            return
        if isinstance(event, PlanReady):
            self._total_images = event.images
            self._total_bytes = event.bytes_total
            log.info(
                "plan: %d images, %d blobs, %d bytes", event.images, event.blobs, event.bytes_total
            )
            self.line(
                f"plan: {event.images} image(s), {event.blobs} blob(s) to check, "
                f"up to {human_bytes(event.bytes_total)}"
            )
        elif isinstance(event, ImageDone):
            self._done += 1
            mark = {"copied": "ok  ", "skipped": "same", "failed": "FAIL", "cancelled": "stop"}
            text = f"[{mark.get(event.status, event.status)}] {event.source} -> {event.target}"
            if event.status == "failed":
                self._failed += 1
                text += f"\n       {event.error}"
            log.info(
                "line %d: %s %s -> %s %s",
                event.line,
                event.status,
                event.source,
                event.target,
                event.error or "",
            )
            self.line(text)
        elif isinstance(event, Message):
            getattr(log, event.level)(event.text)
            if event.level != "info" or self.mode == "plain":
                self.line(f"{event.level}: {event.text}")
        self._update(force=True)

    def _update(self, force: bool = False) -> None:
        desc = f"images {self._done}/{self._total_images}" + (
            f" ({self._failed} failed)" if self._failed else ""
        )
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                description=desc,
                completed=min(max(0, self._bytes + self._not_needed), self._total_bytes),
                total=self._total_bytes or None,
            )
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self._last_plain >= PLAIN_INTERVAL and not force:
                self._last_plain = now
                speed = self._bytes / max(now - self._started, 1e-6)
                left = max(0, self._total_bytes - self._bytes - self._not_needed)
                eta = f", about {left / speed:.0f}s left" if speed > 0 and left else ""
                self.line(f"{desc}, {human_bytes(self._bytes)} read, {human_bytes(speed)}/s{eta}")
