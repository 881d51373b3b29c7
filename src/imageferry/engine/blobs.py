"""Move one blob to every (target, repository) that needs it, cheapest way first.

Order per target: already there (HEAD) → skip; there in another repository
→ mount; else upload. Retries belong to requests, not to the blob: every
HEAD and mount is retried on its own, an upload (a fresh POST and a streamed
PUT) is retried on its own, and a source stream that breaks mid-blob is
resumed from where it broke (a Range GET where the source supports it), so
faults met in different steps never add up to one blob's failure.

The source is read once per upload attempt and its chunks are fed to all
targets that need an upload (a tee with bounded queues), every chunk
verified against the digest before the last one is let out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TypeVar

from imageferry.core.cancel import CancelToken
from imageferry.core.digest import verified_chunks
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import BlobDone, BlobProgress, EventSink, Message
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Descriptor
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.locations import Target
from imageferry.engine.plan import BlobJob
from imageferry.engine.resume import ResumedStream, suffix_chunks
from imageferry.engine.stops import Opener, Stops

_END = object()
_QUEUE_DEPTH = 8
PROBED = 1024 * 1024  # bytes: a blob up to this size is probed, not HEADed (see above)
T = TypeVar("T")


@quick_dataclass
class BlobMover:
    """Moves blobs from one source to every target that lacks them."""

    source: BlobSource
    targets: list[Target]
    policy: RetryPolicy
    cancel: CancelToken
    events: EventSink

    def __post_init__(self) -> None:
        for target in self.targets:  # a registry retries an upload's POST on its own
            set_retry = getattr(target.sink, "set_retry", None)
            if set_retry is not None:
                set_retry(self._retried)

    def run(self, job: BlobJob) -> dict[int, ImageFerryError]:
        """Do the job; return the error per target index that could not get the blob.

        A target that fails does not hold up the others; a slow one never makes
        another redo its work. Raises only :class:`Cancelled`."""
        repos_of: dict[int, list[str]] = {}
        for t, repo in job.destinations:
            repos_of.setdefault(t, []).append(repo)
        failures: dict[int, ImageFerryError] = {}
        uploads: dict[int, list[str]] = {}
        for t, repos in repos_of.items():
            try:
                missing = self._settle_without_upload(job, t, repos)
            except Cancelled:
                raise
            except ImageFerryError as exc:
                failures[t] = exc
                continue
            if missing:
                uploads[t] = missing
        if uploads:
            failures.update(self._upload_retrying(job, uploads))
        return failures

    def _retried(self, action: Callable[[], T], what: str) -> T:
        """One request (or one upload), with its own attempts."""

        def retrying(_attempt: int, err: BaseException, wait: float) -> None:
            self.events(Message("warning", f"retrying {what} in {wait:.1f}s: {err}"))

        return self.policy.run(action, self.cancel, on_retry=retrying)

    def _optional(self, action: Callable[[], bool], what: str) -> bool:
        """A shortcut (HEAD, mount), retried; one that still fails for a temporary reason
        counts as not taken: the blob is uploaded instead, which is never wrong."""
        try:
            return self._retried(action, what)
        except Cancelled:
            raise
        except ImageFerryError as exc:
            if not exc.temporary:
                raise
            self.events(Message("warning", f"{what} failed ({exc}); going on without it"))
            return False

    def _settle_without_upload(self, job: BlobJob, t: int, repos: list[str]) -> list[str]:
        """HEAD each repository, mount where a sibling has it; return what still needs bytes.

        A small blob is probed in its first repository instead (see ``probe_blob``): the
        answer opens the upload too; the other repositories get it by a mount after."""
        sink = self.targets[t].sink
        desc = job.desc
        where = self.targets[t].name
        what = f"checking blob {desc.digest.short} at {where}"
        probe = getattr(sink, "probe_blob", None)
        if probe is not None and desc.size <= PROBED and not self._same_registry(t):
            if not self._optional(partial(probe, repos[0], desc), what):
                return repos
            have, missing = repos[:1], repos[1:]
        else:
            have = [r for r in repos if self._optional(partial(sink.has_blob, r, desc), what)]
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
        sink = self.targets[t].sink
        what = f"mounting blob {job.desc.digest.short} at {self.targets[t].name}"
        if not self._optional(lambda: sink.mount_blob(repo, from_repo, job.desc), what):
            return False
        where = f"{self.targets[t].name}/{repo}"
        self.events(BlobDone(str(job.desc.digest), job.desc.size, "mounted", where))
        return True

    def _upload_retrying(
        self, job: BlobJob, uploads: dict[int, list[str]]
    ) -> dict[int, ImageFerryError]:
        """Upload to every target in ``uploads``; a target that failed for a temporary
        reason is tried again (the others are not), ``retries`` times."""
        pending = dict(uploads)
        placed: set[int] = set()  # targets whose first repository has the blob
        failures: dict[int, ImageFerryError] = {}

        def attempt() -> None:
            errors = self._upload(job, pending, placed)
            for t in list(pending):
                if t not in errors:
                    failures.pop(t, None)
                    del pending[t]
                    continue
                failures[t] = errors[t]
                if not errors[t].temporary or errors[t].retried_out:
                    del pending[t]  # for good, or its request was retried already
            if pending:
                raise failures[next(iter(pending))]

        try:
            self._retried(attempt, f"uploading blob {job.desc.digest.short}")
        except Cancelled:
            raise
        except ImageFerryError:
            pass  # ``failures`` holds each target's last error
        return failures

    def _upload(
        self, job: BlobJob, uploads: dict[int, list[str]], placed: set[int]
    ) -> dict[int, ImageFerryError]:
        """One attempt: stream to the first repository of each target that lacks the
        blob, then mount (else upload) it into the target's other repositories."""
        desc = job.desc
        primaries = {t: repos[0] for t, repos in uploads.items() if t not in placed}
        errors = self._stream_to(job, primaries) if primaries else {}
        for t, repos in uploads.items():
            if t in errors:
                continue
            if t not in placed:
                placed.add(t)
                where = f"{self.targets[t].name}/{repos[0]}"
                self.events(BlobDone(str(desc.digest), desc.size, "copied", where))
            try:
                self._spread(job, t, repos)
            except Cancelled:
                raise
            except ImageFerryError as exc:
                errors[t] = exc
        return errors

    def _stream_to(self, job: BlobJob, primaries: dict[int, str]) -> dict[int, ImageFerryError]:
        """Read the source once, verified, into one upload per target."""
        read = 0

        def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal read
            for chunk in chunks:
                self.cancel.check()
                read += len(chunk)
                self.events(BlobProgress(len(chunk)))
                yield chunk

        if len(primaries) == 1:
            ((t, repo),) = primaries.items()
            if hasattr(self.targets[t].sink, "put_blob_resumable"):
                return self._stream_resumable(job, t, repo)
        try:
            raw = self._source_chunks(job)
        except Cancelled:
            raise
        except ImageFerryError as exc:  # the source's error (retried): no target got a byte
            return dict.fromkeys(primaries, exc)
        try:
            errors = _tee(_verified(job.desc, counted(raw)), primaries, self.targets, job.desc)
        finally:
            raw.close()
        if errors and read:
            self.events(BlobProgress(-read))  # this attempt's bytes will be read again
        return errors

    def _stream_resumable(self, job: BlobJob, t: int, repo: str) -> dict[int, ImageFerryError]:
        """Upload to one target in recorded pieces; a later run continues where it stopped."""
        done = 0  # progress reported in this attempt

        def open_from(start: int) -> Iterator[bytes]:
            nonlocal done
            if start:
                where = f"{self.targets[t].name}/{repo}"
                text = f"blob {job.desc.digest.short}: {where} holds {start} bytes; continuing"
                self.events(Message("info", text))
                self.events(BlobProgress(start))  # already done
                done += start
            if start >= job.desc.size:
                return iter(())  # the target holds it all: only the commit is left
            return suffix_chunks(job.desc, start, partial(self._source_chunks, job), counted)

        stops = Stops(self.cancel)

        def counted(chunk: bytes) -> None:
            nonlocal done
            stops.check()
            done += len(chunk)
            self.events(BlobProgress(len(chunk)))

        try:
            opener = Opener(open_from, stops)
            self.targets[t].sink.put_blob_resumable(repo, job.desc, opener)  # type: ignore[attr-defined]
        except Cancelled:
            raise
        except ImageFerryError as exc:
            if done:
                self.events(BlobProgress(-done))  # the next attempt counts again
            return {t: exc}
        return {}

    def _spread(self, job: BlobJob, t: int, repos: list[str]) -> None:
        """The blob is at ``t`` now: mount it into its other repositories (else upload)."""
        while len(repos) > 1:
            repo = repos[1]
            if not self._mount(t, repo, repos[0], job):
                chunks = self._source_chunks(job)
                try:
                    self.targets[t].sink.put_blob(repo, job.desc, _verified(job.desc, chunks))
                finally:
                    chunks.close()
            del repos[1]

    def _source_chunks(
        self, job: BlobJob, start: int = 0, on_prefix: Callable[[bytes], None] | None = None
    ) -> ResumedStream:
        """The blob from the source (opened now: raises when the source fails)."""
        return ResumedStream(
            self.source,
            job.source_repository,
            job.desc,
            self._retried,
            self.policy,
            self.cancel,
            self.events,
            start,
            on_prefix,
        )


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
                try:
                    item = queues[t].get(timeout=0.25)
                except queue.Empty:
                    continue  # the feeder always ends with _END or its error
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
        _join(threads)
        if isinstance(exc, ImageFerryError) and not isinstance(exc, Cancelled):
            return {t: exc for t in primaries}
        raise
    _join(threads)
    return errors


def _join(threads: list[threading.Thread]) -> None:
    """Wait for the uploads, in short timed waits (an untimed one ignores Ctrl-C on Windows)."""
    for thread in threads:
        while thread.is_alive():
            thread.join(0.25)
