"""Run a plan: blobs in parallel (bounded), then each image's manifests, tag last.

An image is pushed to a target only when every blob it needs arrived there,
children manifests before the index, the tag last: a target never shows a
tag whose content is missing. A stop (cancel) abandons in-flight uploads.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import EventSink, ImageDone, ImageStatus
from imageferry.core.manifest import Descriptor, Manifest
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.blobs import BlobMover
from imageferry.engine.locations import Target
from imageferry.engine.plan import Delivery, ImagePlan, TransferPlan
from imageferry.engine.referrers import push_referrers


@dataclass(frozen=True)
class ImageResult:
    line: int
    source: str
    target: str
    target_name: str
    status: ImageStatus
    digest: str | None = None
    error: str | None = None
    referrers: int = 0  # signatures, SBOMs, attestations delivered with it


BlobFutures = dict[str, "Future[dict[int, ImageFerryError]]"]


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
    mover = BlobMover(source, targets, policy, cancel, events)
    blob_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="blob")
    image_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image")
    try:
        futures: BlobFutures = {
            digest: blob_pool.submit(mover.run, job) for digest, job in plan.blobs.items()
        }
        image_futures = [
            image_pool.submit(_finish_image, image, futures, targets, policy, cancel, events)
            for image in plan.images
        ]
        return [r for future in image_futures for r in wait_for(future, cancel)]
    finally:
        blob_pool.shutdown(wait=True)
        image_pool.shutdown(wait=True)


def _finish_image(
    image: ImagePlan,
    futures: BlobFutures,
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
    events: EventSink,
) -> list[ImageResult]:
    results = []
    for delivery in image.deliveries:
        result = _deliver(image, delivery, futures, targets, policy, cancel)
        events(
            ImageDone(
                result.line,
                result.source,
                result.target,
                result.status,
                result.error,
                result.target_name,
            )
        )
        results.append(result)
    return results


def _deliver(
    image: ImagePlan,
    delivery: Delivery,
    futures: BlobFutures,
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> ImageResult:
    target = targets[delivery.target]

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
        return _with_referrers(result("skipped"), image, delivery, futures, target, policy, cancel)
    try:
        for blob in image.blobs:
            future = futures.get(str(blob.digest))
            if future is None:
                continue
            failed = future.result().get(delivery.target)
            if failed is not None:
                return result("failed", str(failed))
        repo = delivery.ref.repository
        for manifest in image.manifests[:-1]:
            _push_manifest(target, repo, str(manifest.digest), manifest, policy, cancel)
        cancel.check()
        _push_manifest(target, repo, delivery.ref.tag_or_digest, image.top, policy, cancel)
    except (Cancelled, CancelledError):
        return result("cancelled", "stopped before the image was complete")
    except ImageFerryError as exc:
        return result("failed", str(exc))
    return _with_referrers(result("copied"), image, delivery, futures, target, policy, cancel)


def _with_referrers(
    done: ImageResult,
    image: ImagePlan,
    delivery: Delivery,
    futures: BlobFutures,
    target: Target,
    policy: RetryPolicy,
    cancel: CancelToken,
) -> ImageResult:
    """Push the referrers the target lacks, after their subject (see engine/referrers.py)."""
    if not delivery.referrers:
        return done

    def blobs_failed(blobs: Sequence[Descriptor]) -> str | None:
        for blob in blobs:
            future = futures.get(str(blob.digest))
            failed = future.result().get(delivery.target) if future else None
            if failed is not None:
                return str(failed)
        return None

    try:
        count = push_referrers(
            image.referrers,
            delivery.referrers,
            target,
            delivery.ref.repository,
            fallback=delivery.fallback,
            blobs_ready=blobs_failed,
            policy=policy,
            cancel=cancel,
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
