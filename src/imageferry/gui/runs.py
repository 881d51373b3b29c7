"""One job at a time: start it, poll its events from Tk's loop, show the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imageferry.core.errors import PackageError
from imageferry.core.events import Event, ImageChecked, ImageDone, Message, WatchRound
from imageferry.gui.actions import failed_lines
from imageferry.i18n import _, state_word
from imageferry.jobs.inputs import ImageList
from imageferry.jobs.runner import BackgroundJob

if TYPE_CHECKING:
    from imageferry.gui.app import App

POLL_MS = 100
Done = Callable[[BackgroundJob[Any]], None]


class Runs:
    """The job the window runs now (at most one), and what the last one left to retry."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.job: BackgroundJob[Any] | None = None
        self.images: ImageList | None = None
        self.retry_lines: list[str] = []
        self.checked: list[ImageChecked] = []
        self._then: Done | None = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    @property
    def watching(self) -> bool:
        return self.job is not None and self.job.name == "watch"

    def start(self, job: BackgroundJob[Any], images: ImageList | None, then: Done | None = None):
        self.job, self.images, self._then = job, images, then
        self.checked = []
        self.app.set_busy(True)
        self.app.log.add(_("— {what} started —").format(what=self.app.job_title(job.name)))
        job.start()
        self.app.root.after(POLL_MS, self._poll)

    def stop(self) -> None:
        if self.job is not None and not self.job.stopped:
            self.job.stop()
            self.app.log.add(_("Stopping… (the current step finishes first)"), "warning")
            self.app.status.say(_("Stopping…"))

    def _poll(self) -> None:
        job = self.job
        if job is None:
            return
        for event in job.drain():
            self._event(event)
        self.app.status.show(job.progress.snapshot())
        if job.running:
            self.app.root.after(POLL_MS, self._poll)
            return
        while events := job.drain():  # everything the job said, however much
            for event in events:
                self._event(event)
        self.app.status.show(job.progress.snapshot(), running=False)
        self.job = None
        self.app.set_busy(False)
        self._finish(job)

    def _event(self, event: Event) -> None:
        log = self.app.log
        if isinstance(event, Message):
            log.add(event.translated(_), event.level)
        elif isinstance(event, ImageDone):
            where = f" [{event.target_name}]" if event.target_name else ""
            text = f"{state_word(event.status)}: {event.source} → {event.target}{where}"
            if event.error:
                text += f": {event.error}"
            level = {"failed": "error", "cancelled": "warning"}.get(event.status, "ok")
            log.add(text, level)
        elif isinstance(event, ImageChecked):
            self.checked.append(event)
            log.add(_check_text(event), "ok" if event.ok else "error")
        elif isinstance(event, WatchRound):  # the job's progress starts afresh by itself
            text = _round_text(event)
            log.add(text, "error" if event.failed or event.error else "ok")
            self.app.status.note(text)

    def _finish(self, job: BackgroundJob[Any]) -> None:
        log = self.app.log
        if job.crashed is not None:
            text = _("Internal error: {error}. Details are in imageferry.log; please report it.")
            text = text.format(error=job.crashed)
            log.add(text, "error")
            self.app.status.say(_("Failed"))
            return
        if job.error is not None:
            log.add(str(job.error), "error")
            self.app.status.say(_("Failed"))
            if isinstance(job.error, PackageError):
                self.app.dialogs.error(_("Damaged package"), str(job.error))
            return
        if job.stopped or getattr(job.result, "cancelled", False):
            log.add(_("Stopped. Run it again to resume where it stopped."), "warning")
            self.app.status.say(_("Stopped"))
            return
        if self._then is not None:
            self._then(job)
            return
        self._summary(job.result)

    def _summary(self, result: Any) -> None:
        lines = failed_lines(result)
        referrers = getattr(result, "referrers", 0)
        if referrers:
            text = _("{images} image(s), {referrers} referrer(s): signatures, SBOMs, attestations")
            self.app.log.add(text.format(images=len(result.images), referrers=referrers))
        images = self.images
        self.retry_lines = [images.text_of(n) for n in lines] if images else []
        package = getattr(result, "package", None)
        if package is not None:  # a save: where its files are
            self.app.log.add(_("Package: {path}").format(path=package), "ok")
            for name, size in result.files:
                self.app.log.add(f"  {name}  {size / 1e6:.1f} MB", "ok")
        if not lines:
            self.app.log.add(_("Done: everything went through."), "ok")
            self.app.status.say(_("Done"))
            self.app.show_retry(False)
            return
        self.app.log.add(_("Done, {count} image(s) failed:").format(count=len(lines)), "error")
        for n, text in zip(lines, self.retry_lines, strict=True):
            self.app.log.add(_("  line {line}: {text}").format(line=n, text=text), "error")
        self.app.status.say(_("Done, {count} failed").format(count=len(lines)))
        self.app.show_retry(bool(self.retry_lines))


def _round_text(event: WatchRound) -> str:
    text = _("Round {round} ({at}): {copied} copied, {skipped} same, {failed} failed").format(
        round=event.round,
        at=time.strftime("%H:%M:%S", time.localtime(event.finished_at)),
        copied=event.copied,
        skipped=event.skipped,
        failed=event.failed,
    )
    if event.error:
        text += f"; {event.error}"
    if event.next_at is not None:
        next_at = time.strftime("%H:%M:%S", time.localtime(event.next_at))
        text += _("; next round at {time}").format(time=next_at)
    return text


def _check_text(row: ImageChecked) -> str:
    if row.digest is None:
        return _("line {line}: {source}: {error}").format(
            line=row.line, source=row.source, error=row.error or ""
        )
    parts = [_("line {line}: {source}").format(line=row.line, source=row.source), row.digest[:19]]
    parts += [f"→ {t.ref} [{t.target_name}]: {state_word(t.state)}" for t in row.targets]
    return "  ".join(parts)
