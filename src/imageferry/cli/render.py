"""Progress for people: rich bars on a terminal, plain lines otherwise, silence for --json.

The renderer is an event sink called from engine threads; it locks. The
numbers come from the jobs layer's :class:`RunProgress` (the window draws the
same). Every event also goes to the log file through the ``imageferry.run`` logger.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from imageferry.core.events import (
    BlobProgress,
    Event,
    ImageDone,
    Message,
    PlanReady,
    StageProgress,
    StageStarted,
)
from imageferry.i18n import _
from imageferry.jobs.progress import ProgressSnapshot, RunProgress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("imageferry.run")
PLAIN_INTERVAL = 5.0
_MARK = {"copied": "ok  ", "skipped": "same", "failed": "FAIL", "cancelled": "stop"}
_LEVEL = {"info": lambda: _("info"), "warning": lambda: _("warning"), "error": lambda: _("error")}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def describe(snap: ProgressSnapshot) -> str:
    """``images 3/12 (1 failed)``, per target when there are several."""
    if snap.stage == "verifying":
        return _("verifying")
    if snap.stage == "finishing":
        return _("finishing")
    if len(snap.targets) > 1:
        parts = ", ".join(f"{t.name} {t.done}/{t.total}" for t in snap.targets)
        text = _("images {counts}").format(counts=parts)
    else:
        text = _("images {counts}").format(counts=f"{snap.images_done}/{snap.images_total}")
    failed = _(" ({count} failed)").format(count=snap.images_failed)
    return text + (failed if snap.images_failed else "")


def _stream_is_tty(stream: TextIO | None) -> bool:
    return stream is not None and stream.isatty()


class Renderer:
    def __init__(self, mode: str, out: TextIO | None = None) -> None:
        self.mode = mode  # "rich", "plain" or "quiet"
        self.out = out or sys.stderr
        self.progress = RunProgress()
        self._lock = threading.Lock()
        self._last_plain = time.monotonic()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    @classmethod
    def for_output(cls, json_mode: bool) -> Renderer:
        if json_mode or sys.stderr is None:
            return cls("quiet")
        return cls("rich" if _stream_is_tty(sys.stderr) else "plain")

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

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.out),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("planning", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        elif self.mode == "plain":
            print(text, file=self.out, flush=True)

    def __call__(self, event: Event) -> None:
        self.progress(event)
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        if isinstance(event, PlanReady):
            log.info(
                "plan: %d images, %d blobs, %d bytes", event.images, event.blobs, event.bytes_total
            )
            referrers = (
                _(", {count} referrer(s)").format(count=event.referrers) if event.referrers else ""
            )
            self.line(
                _(
                    "plan: {images} image(s){referrers}, {blobs} blob(s) to check, up to {size}"
                ).format(
                    images=event.images,
                    referrers=referrers,
                    blobs=event.blobs,
                    size=human_bytes(event.bytes_total),
                )
            )
        elif isinstance(event, ImageDone):
            where = f" [{event.target_name}]" if event.target_name else ""
            text = f"[{_MARK.get(event.status, event.status)}] {event.source} -> {event.target}"
            if event.status == "failed":
                text += f"\n       {event.error}"
            log.info(
                "line %d: %s %s -> %s%s %s",
                event.line,
                event.status,
                event.source,
                event.target,
                where,
                event.error or "",
            )
            self.line(text)
        elif isinstance(event, Message):
            getattr(log, event.level)(event.text)
            if event.level != "info" or self.mode == "plain":
                self.line(f"{_LEVEL[event.level]()}: {event.translated(_)}")
        elif isinstance(event, StageStarted):
            log.info("%s: %d bytes", event.stage, event.total)
        self._update(force=not isinstance(event, (BlobProgress, StageProgress)))

    def _update(self, force: bool = False) -> None:
        snap = self.progress.snapshot()
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                description=describe(snap),
                completed=snap.bytes_done,
                total=snap.bytes_total or None,
            )
        elif self.mode == "plain":
            now = time.monotonic()
            if now - self._last_plain >= PLAIN_INTERVAL and not force:
                self._last_plain = now
                eta = _(", about {seconds}s left").format(seconds=f"{snap.eta:.0f}")
                self.line(
                    _("{progress}, {read} read, {speed}/s").format(
                        progress=describe(snap),
                        read=human_bytes(snap.bytes_read),
                        speed=human_bytes(snap.speed),
                    )
                    + (eta if snap.eta else "")
                )
