"""Run a plan: blobs in parallel (bounded), then each image's manifests, tag last.

An image is pushed to a target only when every blob it needs arrived there,
children manifests before the index, the tag last: a target never shows a
tag whose content is missing. A stop (cancel) abandons in-flight uploads.

A blob that could not be delivered for a temporary reason is put back and
tried once more in a final pass, after every other blob had its first go;
only if that fails too do the images that need it fail, and the blob's
error is told once (the first such image; the others name the blob and it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import EventSink, ImageDone, ImageStatus
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Descriptor, Manifest
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.blobs import BlobMover
from imageferry.engine.locations import Target
from imageferry.engine.plan import BlobJob, Delivery, ImagePlan, TransferPlan
from imageferry.engine.referrers import push_referrers


@quick_dataclass(frozen=True)
class ImageResult:
    """How one image ended on one target."""

    line: int
    source: str
    target: str
    target_name: str
    status: ImageStatus
    digest: str | None = None
    error: str | None = None
    referrers: int = 0  # signatures, SBOMs, attestations delivered with it


BlobFailures = dict[int, ImageFerryError]
BlobFutures = dict[str, "Future[BlobFailures]"]


class BlobPasses:
    """Every blob job once; then, when all had their first go, a final pass for the
    targets a blob failed for a temporary reason. ``futures`` hold the outcome after
    both passes, per blob digest."""

    def __init__(
        self, mover: BlobMover, pool: ThreadPoolExecutor, jobs: dict[str, BlobJob]
    ) -> None:
        self._mover = mover
        self._final: BlobMover | None = None  # made when the final pass starts
        self._pool = pool
        self.futures: BlobFutures = {digest: Future() for digest in jobs}
        self._left = len(jobs)
        self._again: list[tuple[str, BlobJob, BlobFailures]] = []
        self._lock = threading.Lock()
        for digest, job in jobs.items():
            first = pool.submit(mover.run, job)
            first.add_done_callback(partial(self._first_done, digest, job))

    def _first_done(self, digest: str, job: BlobJob, first: Future[BlobFailures]) -> None:
        failures = _outcome(first, self.futures[digest])
        with self._lock:
            if failures is not None and any(e.temporary for e in failures.values()):
                self._again.append((digest, job, failures))
            elif failures is not None:
                self.futures[digest].set_result(failures)
            self._left -= 1
            again, self._again = (self._again, []) if self._left == 0 else ([], self._again)
        if again:  # every first try is over: the final pass, with the final policy
            mover = self._mover
            self._final = BlobMover(
                mover.source, mover.targets, mover.policy.final(), mover.cancel, mover.events
            )
        for item in again:
            try:
                self._pool.submit(self._final_pass, *item)
            except RuntimeError:  # the run is being torn down
                self.futures[item[0]].set_result(item[2])

    def _final_pass(self, digest: str, job: BlobJob, failures: BlobFailures) -> None:
        retry = {t for t, e in failures.items() if e.temporary}
        destinations = [(t, repo) for t, repo in job.destinations if t in retry]
        again = BlobJob(job.desc, job.source_repository, destinations)
        try:
            later = (self._final or self._mover).run(again)
        except BaseException as exc:
            self.futures[digest].set_exception(exc)
            return
        kept = {t: e for t, e in failures.items() if t not in retry}
        self.futures[digest].set_result({**kept, **later})


class _BlobReport:
    """Says once per blob and target why it could not be delivered: the first image that
    needed it gets the reason, the others name the blob and that image's line.
    Thread-safe."""

    def __init__(self, targets: list[Target]) -> None:
        self._targets = targets
        self._first: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def failed(self, digest: str, t: int, error: ImageFerryError, line: int) -> str:
        """The error text for the image on list line ``line`` that needed the blob."""
        name = self._targets[t].name
        with self._lock:
            first = self._first.setdefault((digest, t), line)
        if first == line:
            return str(error)  # it names the blob, and whose fault it was
        return f"blob {digest} could not be delivered to {name}: as on line {first}"


def _outcome(first: Future[BlobFailures], final: Future[BlobFailures]) -> BlobFailures | None:
    """The first pass's failures; None when it raised (then ``final`` has raised too)."""
    try:
        return first.result()
    except BaseException as exc:
        final.set_exception(exc)
        return None


def execute_plan(
    plan: TransferPlan,
    source: BlobSource,
    targets: list[Target],
    *,
    policy: RetryPolicy,
    cancel: CancelToken,
    events: EventSink,
    workers: int,
) -> list[ImageResult]:
    """Blocking. Every image's result, in plan order (an image whose manifests could
    not be pushed for a temporary reason is tried once more, after the others)."""
    mover = BlobMover(source, targets, policy, cancel, events)
    blob_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blob")
    image_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image")
    try:
        ctx = _Delivering(
            BlobPasses(mover, blob_pool, plan.blobs).futures,
            targets,
            policy,
            cancel,
            _BlobReport(targets),
            events,
        )
        first = [
            _settled(ctx.image, image)
            if _nothing_to_send(image)
            else image_pool.submit(ctx.image, image, False)
            for image in plan.images
        ]
        rows = [wait_for(future, cancel) for future in first]
        final = replace(ctx, policy=policy.final())
        again = {
            (i, j): image_pool.submit(final.one, plan.images[i], plan.images[i].deliveries[j], True)
            for i, row in enumerate(rows)
            for j, result in enumerate(row)
            if result is None
        }
        for (i, j), future in again.items():
            rows[i][j] = wait_for(future, cancel)
        return [r for row in rows for r in row if r is not None]
    finally:
        blob_pool.shutdown(wait=True)
        image_pool.shutdown(wait=True)


def _nothing_to_send(image: ImagePlan) -> bool:
    """Whether every delivery of ``image`` is decided without a request: failed while
    planning, or up to date with all its referrers there (a rerun's usual image)."""
    return all(
        image.error or d.error or (d.up_to_date and not d.referrers) for d in image.deliveries
    )


def _settled(
    deliver: Callable[[ImagePlan, bool], list[ImageResult | None]], image: ImagePlan
) -> Future[list[ImageResult | None]]:
    """``deliver(image)`` run here and now (no worker thread to start for it)."""
    done: Future[list[ImageResult | None]] = Future()
    done.set_result(deliver(image, False))
    return done


@quick_dataclass(frozen=True)
class _Delivering:
    """One run's deliveries: the blob futures and where they go."""

    futures: BlobFutures
    targets: list[Target]
    policy: RetryPolicy
    cancel: CancelToken
    report: _BlobReport
    events: EventSink

    def image(self, image: ImagePlan, final: bool) -> list[ImageResult | None]:
        """Each delivery's result; None for one put back for the final pass."""
        return [self.one(image, delivery, final) for delivery in image.deliveries]

    def one(self, image: ImagePlan, delivery: Delivery, final: bool) -> ImageResult | None:
        result = _deliver(image, delivery, self, final)
        if result is not None:
            self.events(
                ImageDone(
                    result.line,
                    result.source,
                    result.target,
                    result.status,
                    result.error,
                    result.target_name,
                )
            )
        return result


def _deliver(
    image: ImagePlan, delivery: Delivery, ctx: _Delivering, final: bool
) -> ImageResult | None:
    """Push the image's manifests once its blobs are there. None: it failed for a
    temporary reason and is put back for the final pass (``final`` False only)."""
    target = ctx.targets[delivery.target]

    def result(status: ImageStatus, error: str | None = None) -> ImageResult:
        digest = str(image.top.digest) if image.manifests else None
        return ImageResult(
            image.entry.line,
            str(image.source),
            str(delivery.ref),
            target.name,
            status,
            digest,
            error,
        )

    if image.error or delivery.error:
        return result("failed", image.error or delivery.error)
    if delivery.up_to_date:
        return _with_referrers(result("skipped"), image, delivery, ctx)
    try:
        for blob in image.blobs:
            future = ctx.futures.get(str(blob.digest))
            failed = wait_for(future, ctx.cancel).get(delivery.target) if future else None
            if failed is not None:
                error = ctx.report.failed(
                    str(blob.digest), delivery.target, failed, image.entry.line
                )
                return result("failed", error)
        repo = delivery.ref.repository
        for manifest in image.manifests[:-1]:
            _push_manifest(target, repo, str(manifest.digest), manifest, ctx.policy, ctx.cancel)
        ctx.cancel.check()
        reference = delivery.ref.tag_or_digest
        _push_manifest(target, repo, reference, image.top, ctx.policy, ctx.cancel)
    except (Cancelled, CancelledError):
        return result("cancelled", "stopped before the image was complete")
    except ImageFerryError as exc:
        return None if exc.temporary and not final else result("failed", str(exc))
    return _with_referrers(result("copied"), image, delivery, ctx)


def _with_referrers(
    done: ImageResult, image: ImagePlan, delivery: Delivery, ctx: _Delivering
) -> ImageResult:
    """Push the referrers the target lacks, after their subject (see engine/referrers.py)."""
    if not delivery.referrers:
        return done

    def blobs_failed(blobs: Sequence[Descriptor]) -> str | None:
        for blob in blobs:
            future = ctx.futures.get(str(blob.digest))
            failed = wait_for(future, ctx.cancel).get(delivery.target) if future else None
            if failed is not None:
                return str(failed)
        return None

    try:
        count = push_referrers(
            image.referrers,
            delivery.referrers,
            ctx.targets[delivery.target],
            delivery.ref.repository,
            fallback=delivery.fallback,
            blobs_ready=blobs_failed,
            policy=ctx.policy,
            cancel=ctx.cancel,
        )
    except (Cancelled, CancelledError):
        return replace(done, status="cancelled", error="stopped before its referrers were pushed")
    except ImageFerryError as exc:
        return replace(done, status="failed", error=str(exc))
    return replace(done, referrers=count)


def _push_manifest(
    target: Target,
    repo: str,
    reference: str,
    manifest: Manifest,
    policy: RetryPolicy,
    cancel: CancelToken,
) -> None:
    policy.run(lambda: target.sink.put_manifest(repo, reference, manifest), cancel)
