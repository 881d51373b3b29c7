"""Move one blob to every (target, repository) that needs it, cheapest way first.

Order per target: already there (HEAD) → skip; there in another repository
→ mount; else upload. The source is read once per attempt and its chunks are
fed to all targets that need an upload (a tee with bounded queues), every
chunk verified against the digest before the last one is let out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from imageferry.core.cancel import CancelToken
from imageferry.core.digest import verified_chunks
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import BlobDone, BlobProgress, EventSink, Message
from imageferry.core.manifest import Descriptor
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.locations import Target
from imageferry.engine.plan import BlobJob

_END = object()
_QUEUE_DEPTH = 8


@dataclass
class BlobMover:
    source: BlobSource
    targets: list[Target]
    policy: RetryPolicy
    cancel: CancelToken
    events: EventSink

    def run(self, job: BlobJob) -> dict[int, ImageFerryError]:
        """Do the job; return the error per target index that could not get the blob.

        Targets that succeed or fail for good drop out; the retry policy repeats the
        attempt for the others, so one slow target never makes another redo its work.
        """
        pending: dict[int, list[str]] = {}
        for t, repo in job.destinations:
            pending.setdefault(t, []).append(repo)
        failures: dict[int, ImageFerryError] = {}

        def attempt() -> None:
            try:
                errors = self._attempt(job, pending)
            except Cancelled:
                raise
            except ImageFerryError as exc:  # not one target's fault: every pending one fails
                errors = dict.fromkeys(pending, exc)
            for t in list(pending):
                if t not in errors:
                    failures.pop(t, None)
                    del pending[t]
                    continue
                failures[t] = errors[t]
                if not errors[t].temporary:
                    del pending[t]
            if pending:
                raise failures[next(iter(pending))]

        def retrying(_attempt: int, err: BaseException, wait: float) -> None:
            text = f"retrying {job.desc.digest.short} in {wait:.1f}s: {err}"
            self.events(Message("warning", text))

        try:
            self.policy.run(attempt, self.cancel, on_retry=retrying)
        except Cancelled:
            raise
        except ImageFerryError:
            pass  # ``failures`` holds each target's last error
        return failures

    def _attempt(self, job: BlobJob, pending: dict[int, list[str]]) -> dict[int, ImageFerryError]:
        errors: dict[int, ImageFerryError] = {}
        uploads: dict[int, list[str]] = {}
        for t, repos in pending.items():
            try:
                missing = self._settle_without_upload(job, t, repos)
            except Cancelled:
                raise
            except ImageFerryError as exc:
                errors[t] = exc
                continue
            if missing:
                uploads[t] = missing
        if uploads:
            errors.update(self._upload(job, uploads))
        return errors

    def _settle_without_upload(self, job: BlobJob, t: int, repos: list[str]) -> list[str]:
        """HEAD each repository, mount where a sibling has it; return what still needs bytes."""
        sink = self.targets[t].sink
        desc = job.desc
        where = self.targets[t].name
        have = [r for r in repos if sink.has_blob(r, desc)]
        missing = [r for r in repos if r not in have]
        for repo in have:
            self.events(BlobDone(str(desc.digest), desc.size, "skipped", f"{where}/{repo}"))
        if have:
            missing = [r for r in missing if not self._mount(t, r, have[0], job)]
        elif missing and self._same_registry(t):  # within one registry no byte has to move
            missing = [r for r in missing if not self._mount(t, r, job.source_repository, job)]
        return missing

    def _same_registry(self, t: int) -> bool:
        host = getattr(self.source, "host", None)
        return bool(host) and host == self.targets[t].host

    def _mount(self, t: int, repo: str, from_repo: str, job: BlobJob) -> bool:
        if not self.targets[t].sink.mount_blob(repo, from_repo, job.desc):
            return False
        where = f"{self.targets[t].name}/{repo}"
        self.events(BlobDone(str(job.desc.digest), job.desc.size, "mounted", where))
        return True

    def _upload(self, job: BlobJob, uploads: dict[int, list[str]]) -> dict[int, ImageFerryError]:
        desc = job.desc
        read = 0

        def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal read
            for chunk in chunks:
                self.cancel.check()
                read += len(chunk)
                self.events(BlobProgress(len(chunk)))
                yield chunk

        try:
            raw = self.source.open_blob(job.source_repository, desc)
        except Cancelled:
            raise
        except ImageFerryError as exc:  # the source's error: no target got a byte
            return dict.fromkeys(uploads, exc)
        stream = _verified(desc, counted(raw))
        try:
            errors = _tee(stream, {t: repos[0] for t, repos in uploads.items()}, self.targets, desc)
        finally:
            close = getattr(raw, "close", None)
            if close:
                close()
        if errors and read:
            self.events(BlobProgress(-read))  # this attempt's bytes will be read again
        for t, repos in uploads.items():
            if t in errors:
                continue
            where = f"{self.targets[t].name}/{repos[0]}"
            self.events(BlobDone(str(desc.digest), desc.size, "copied", where))
            for repo in repos[1:]:
                try:
                    if not self._mount(t, repo, repos[0], job):
                        chunks = self.source.open_blob(job.source_repository, desc)
                        self.targets[t].sink.put_blob(repo, desc, _verified(desc, chunks))
                except Cancelled:
                    raise
                except ImageFerryError as exc:
                    errors[t] = exc
        return errors


def _verified(desc: Descriptor, chunks: Iterable[bytes]) -> Iterator[bytes]:
    return verified_chunks(chunks, desc.digest, desc.size, f"blob {desc.digest.short}")


def _tee(
    stream: Iterator[bytes], primaries: dict[int, str], targets: list[Target], desc: Descriptor
) -> dict[int, ImageFerryError]:
    """Feed one stream to several uploads. Errors of the stream reach every upload."""
    if len(primaries) == 1:
        ((t, repo),) = primaries.items()
        try:
            targets[t].sink.put_blob(repo, desc, stream)
        except Cancelled:
            raise
        except ImageFerryError as exc:
            return {t: exc}
        return {}
    queues = {t: queue.Queue[object](maxsize=_QUEUE_DEPTH) for t in primaries}
    errors: dict[int, ImageFerryError] = {}
    done = {t: threading.Event() for t in primaries}

    def consume(t: int, repo: str) -> None:
        def chunks() -> Iterator[bytes]:
            while True:
                item = queues[t].get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]

        try:
            targets[t].sink.put_blob(repo, desc, chunks())
        except ImageFerryError as exc:
            errors[t] = exc
        except Exception as exc:  # keep the tee alive; report as a failure of this target
            errors[t] = ImageFerryError(f"upload to {targets[t].name} failed: {exc}")
        finally:
            done[t].set()
            while not queues[t].empty():  # unblock the feeder
                queues[t].get_nowait()

    threads = [
        threading.Thread(target=consume, args=(t, repo), daemon=True, name=f"tee-{t}")
        for t, repo in primaries.items()
    ]
    for thread in threads:
        thread.start()

    def feed(item: object) -> None:
        for t, q in queues.items():
            while not done[t].is_set():
                try:
                    q.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue

    try:
        for chunk in stream:
            feed(chunk)
        feed(_END)
    except BaseException as exc:
        feed(exc)
        for thread in threads:
            thread.join()
        if isinstance(exc, ImageFerryError) and not isinstance(exc, Cancelled):
            return {t: exc for t in primaries}
        raise
    for thread in threads:
        thread.join()
    return errors
