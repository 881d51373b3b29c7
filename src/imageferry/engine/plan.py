"""Plan before moving anything: resolve every image, dedupe blobs, drop what targets have.

The plan knows, per image, the manifests to push (children first, the tagged
one last) and, per unique blob, every (target, repository) that needs it,
so totals are known before the first byte moves.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import field, replace

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.digest import Digest
from imageferry.core.errors import (
    Cancelled,
    DigestMismatchError,
    ImageFerryError,
    InputError,
    NotFoundError,
    RegistryError,
)
from imageferry.core.events import EventSink, Message, PlanReady, ignore_events
from imageferry.core.imagelist import ListEntry
from imageferry.core.lazydata import lazy_dataclass, quick_dataclass
from imageferry.core.manifest import (
    Descriptor,
    Manifest,
    Platform,
    build_index,
    filter_index,
)
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.locations import Target
from imageferry.engine.platforms import check_platform
from imageferry.engine.referrers import (
    ReferrerFinder,
    ReferrerPlan,
    missing_on,
    needs_fallback_index,
)

Pairing = tuple[ListEntry, Reference, list[Reference]]  # a list line, its source, its targets


@quick_dataclass(frozen=True)
class Delivery:
    """One image to one target; ``error`` when that target could not even be asked."""

    target: int
    ref: Reference
    up_to_date: bool = False
    error: str | None = None
    referrers: tuple[int, ...] = ()  # which of the image's referrers the target lacks
    fallback: bool = False  # the target needs the referrers fallback index maintained

    @property
    def pending(self) -> bool:
        """Whether the image still has to go there."""
        return not self.up_to_date and self.error is None


@quick_dataclass(frozen=True)
class ImagePlan:
    entry: ListEntry
    source: Reference
    deliveries: tuple[Delivery, ...]
    manifests: tuple[Manifest, ...] = ()  # children first, the tagged one last
    blobs: tuple[Descriptor, ...] = ()
    error: str | None = None
    referrers: tuple[ReferrerPlan, ...] = ()  # subjects before their referrers
    temporary: bool = False  # the error may pass: worth a final try

    @property
    def top(self) -> Manifest:
        return self.manifests[-1]


@lazy_dataclass
class BlobJob:
    desc: Descriptor
    source_repository: str
    destinations: list[tuple[int, str]] = field(default_factory=list)


@quick_dataclass
class TransferPlan:
    images: list[ImagePlan]
    blobs: dict[str, BlobJob]

    @property
    def bytes_total(self) -> int:
        return sum(job.desc.size for job in self.blobs.values())


def resolve_manifests(
    source: BlobSource, ref: Reference, platforms: tuple[Platform, ...]
) -> tuple[list[Manifest], list[Descriptor]]:
    """Fetch the image's manifests (children first) and its unique blobs."""
    top, chosen = resolve_top(source, ref, platforms)
    return resolve_children(source, ref, top, chosen, platforms)


def resolve_top(
    source: BlobSource, ref: Reference, platforms: tuple[Platform, ...]
) -> tuple[Manifest, list[Descriptor] | None]:
    """The tagged manifest, and for an index the children ``platforms`` choose (else None)."""
    top = source.get_manifest(ref.repository, ref.tag_or_digest)
    if not top.is_index:
        if platforms:
            check_platform(source, ref, top, platforms)
        return top, None
    chosen = filter_index(top, platforms)
    if not chosen:
        have = ", ".join(str(c.platform) for c in top.children if c.platform) or "none"
        wanted = ", ".join(str(p) for p in platforms)
        raise InputError(f"{ref}: no manifest for platform {wanted} (it has: {have})")
    return top, chosen


def delivered_top(top: Manifest, chosen: list[Descriptor] | None) -> Manifest | Digest:
    """What will be pushed under the tag: known from ``top`` alone, except a lone child's digest."""
    if chosen is None or len(chosen) == len(top.children):
        return top
    if len(chosen) == 1:
        return chosen[0].digest
    return build_index(top, chosen)


def resolve_children(
    source: BlobSource,
    ref: Reference,
    top: Manifest,
    chosen: list[Descriptor] | None,
    platforms: tuple[Platform, ...],
) -> tuple[list[Manifest], list[Descriptor]]:
    """The manifests to push (children first) and their unique blobs."""
    if chosen is None:
        return [top], _unique(top.blobs)
    children = [_child(source, ref, c) for c in chosen]
    for child in children:
        if child.is_index:
            raise InputError(f"{ref}: nested indexes are not supported")
    blobs = _unique([b for child in children for b in child.blobs])
    if not platforms or len(chosen) == len(top.children):
        return [*children, top], blobs
    if len(children) == 1:
        return children, blobs
    return [*children, build_index(top, chosen)], blobs


def _child(source: BlobSource, ref: Reference, desc: Descriptor) -> Manifest:
    """A child of an index, checked against the size the index lists (its digest is checked
    by the source)."""
    child = source.get_manifest(ref.repository, str(desc.digest))
    if child.size != desc.size:
        raise DigestMismatchError(
            f"{ref}: the manifest {desc.digest} has {child.size} bytes, its index lists "
            f"{desc.size}: the source serves something else than the index names",
            expected=f"{desc.size} bytes",
            actual=f"{child.size} bytes",
        )
    return child


def _unique(blobs: list[Descriptor] | tuple[Descriptor, ...]) -> list[Descriptor]:
    seen: dict[str, Descriptor] = {}
    for blob in blobs:
        if not blob.is_foreign:
            seen.setdefault(str(blob.digest), blob)
    return list(seen.values())


def resolve_plan(
    entries: list[Pairing],
    source: BlobSource,
    targets: list[Target],
    *,
    platforms: tuple[Platform, ...],
    policy: RetryPolicy,
    cancel: CancelToken,
    events: EventSink,
    workers: int,
    referrers: ReferrerFinder | None = None,
    resolve_delivered: bool = True,
) -> TransferPlan:
    """Resolve every image in parallel; an image that fails to resolve is kept with its error.

    A line that repeats an earlier one (same source, same target names) is planned once.
    With ``referrers``, each image's referrers are found and planned with it. With
    ``resolve_delivered`` False, an image every target has already (the tagged digest
    matches) is not resolved further: no child manifests are fetched for it (a copy's
    rerun; its referrers are looked up by the digests its index names). What failed for a
    temporary reason gets a final pass.
    """
    entries = unique_pairings(entries, events)
    planner = _Planner(source, targets, platforms, cancel, referrers, resolve_delivered)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="plan") as pool:
        futures = [pool.submit(planner.image, item, policy) for item in entries]
        images = [wait_for(f, cancel) for f in futures]
        again = {
            i: pool.submit(planner.image, entries[i], policy.final())
            for i, image in enumerate(images)
            if image.temporary
        }
        for i, future in again.items():
            images[i] = wait_for(future, cancel)
    plan = TransferPlan(images, blob_jobs(images))
    names = tuple(t.name for t in targets)
    count = sum(len(i.referrers) for i in images)
    events(PlanReady(len(images), len(plan.blobs), plan.bytes_total, names, count))
    return plan


@quick_dataclass
class _Planner:
    source: BlobSource
    targets: list[Target]
    platforms: tuple[Platform, ...]
    cancel: CancelToken
    referrers: ReferrerFinder | None
    resolve_delivered: bool
    unreachable: dict[int, str] = field(default_factory=dict)  # target → why: not asked again
    apis: dict[int, bool] = field(default_factory=dict)  # target → has the referrers API

    def image(self, item: Pairing, retry: RetryPolicy) -> ImagePlan:
        """The tagged manifest first, then the targets' digests, then (if needed) the rest.

        An image every target has already (a copy's rerun) is not resolved further: its
        referrers are looked up by the digests its tagged manifest names (its own and its
        children's), so no child manifest is fetched for them."""
        entry, src, dsts = item
        found: list[ReferrerPlan] = []
        try:
            top, chosen = retry.run(
                lambda: resolve_top(self.source, src, self.platforms), self.cancel
            )
            final = delivered_top(top, chosen)
            digest = final if isinstance(final, Digest) else final.digest
            asked = [
                _delivery(i, t, dst, digest, retry, self.cancel, self.unreachable)
                for i, (t, dst) in enumerate(zip(self.targets, dsts, strict=False))
            ]
            deliveries = tuple(d for d, _ in asked)
            temporary = any(again for _, again in asked)
            subjects, manifests, blobs = self._contents(src, top, chosen, final, deliveries, retry)
            if self.referrers is not None:
                finder = self.referrers
                found = retry.run(lambda: finder.find(src.repository, subjects), self.cancel)
        except Cancelled:
            raise
        except ImageFerryError as exc:
            deliveries = tuple(Delivery(i, dst) for i, dst in enumerate(dsts))
            why = f"not found in the source ({exc})" if isinstance(exc, NotFoundError) else str(exc)
            return ImagePlan(entry, src, deliveries, error=why, temporary=exc.temporary)
        deliveries = tuple(
            with_referrers(d, t, found, retry, self.cancel, self.apis)
            for d, t in zip(deliveries, self.targets, strict=False)
        )
        return ImagePlan(
            entry, src, deliveries, tuple(manifests), tuple(blobs), None, tuple(found), temporary
        )

    def _contents(
        self,
        src: Reference,
        top: Manifest,
        chosen: list[Descriptor] | None,
        final: Manifest | Digest,
        deliveries: tuple[Delivery, ...],
        retry: RetryPolicy,
    ) -> tuple[list[Manifest], list[Manifest], list[Descriptor]]:
        """The subjects of referrers, the manifests to push and their blobs: for an image
        every target has, the tagged manifest (and its children's digests) alone."""
        if isinstance(final, Manifest) and self._delivered(deliveries):
            return [*_stand_ins(chosen), final], [final], []
        manifests, blobs = retry.run(
            lambda: resolve_children(self.source, src, top, chosen, self.platforms), self.cancel
        )
        return manifests, manifests, blobs

    def _delivered(self, deliveries: tuple[Delivery, ...]) -> bool:
        """Nothing to send anywhere, and the caller needs no contents of what is there."""
        return (
            not self.resolve_delivered
            and bool(deliveries)
            and not any(d.pending for d in deliveries)
        )


def _stand_ins(children: list[Descriptor] | None) -> list[Manifest]:
    """The children an index names, as the subjects of referrers (their digests are all
    that a referrer lookup needs)."""
    return [Manifest(b"", c.media_type, c.digest) for c in children or ()]


def with_referrers(
    delivery: Delivery,
    target: Target,
    found: list[ReferrerPlan],
    policy: RetryPolicy,
    cancel: CancelToken,
    apis: dict[int, bool],
) -> Delivery:
    """``delivery`` with the referrers ``target`` lacks (only asked when there are some);
    ``apis`` remembers per target index whether it has the referrers API."""
    if not found or delivery.error is not None:
        return delivery
    repo = delivery.ref.repository
    try:
        missing = missing_on(target, repo, found, policy, cancel)
        fallback = bool(missing) and needs_fallback_index(
            target, repo, [found[i] for i in missing], policy, cancel, apis, delivery.target
        )
    except Cancelled:
        raise
    except ImageFerryError as exc:
        return replace(delivery, error=f"checking referrers: {exc}")
    return replace(delivery, referrers=missing, fallback=fallback)


def _delivery(
    i: int,
    target: Target,
    ref: Reference,
    top: Digest,
    policy: RetryPolicy,
    cancel: CancelToken,
    unreachable: dict[int, str],
) -> tuple[Delivery, bool]:
    """Whether ``target`` has the image already; a target that fails fails only its delivery
    (and whether that failure was a temporary answer, worth a final try).

    A target that could not be connected to (after the retries) is not asked again.
    """
    if i in unreachable:
        return Delivery(i, ref, error=unreachable[i]), False
    try:
        return Delivery(i, ref, target_digest(target, ref, policy, cancel) == top), False
    except Cancelled:
        raise
    except ImageFerryError as exc:
        if isinstance(exc, RegistryError) and exc.status is None and exc.temporary:
            unreachable.setdefault(i, f"not tried: {target.name} could not be reached ({exc})")
            return Delivery(i, ref, error=str(exc)), False
        return Delivery(i, ref, error=str(exc)), exc.temporary


def unique_pairings(pairs: list[Pairing], events: EventSink = ignore_events) -> list[Pairing]:
    """``pairs`` without the lines that repeat an earlier one: same source, same targets."""
    first: dict[tuple[str, ...], ListEntry] = {}
    kept = []
    for entry, src, dsts in pairs:
        key = (str(src), *map(str, dsts))
        seen = first.setdefault(key, entry)
        if seen is entry:
            kept.append((entry, src, dsts))
        else:
            text = f"line {entry.line} repeats line {seen.line} ({src}): delivered once"
            events(Message("info", text))
    return kept


def target_digest(
    target: Target, ref: Reference, policy: RetryPolicy, cancel: CancelToken
) -> Digest | None:
    """What ``ref`` names on ``target`` now (one HEAD, retried), or None when absent."""
    return policy.run(
        lambda: target.sink.manifest_digest(ref.repository, ref.tag_or_digest), cancel
    )


def blob_jobs(images: list[ImagePlan]) -> dict[str, BlobJob]:
    jobs: dict[str, BlobJob] = {}
    for image in images:
        if image.error:
            continue
        for blob, d in _needed(image):
            job = jobs.setdefault(str(blob.digest), BlobJob(blob, image.source.repository))
            key = (d.target, d.ref.repository)
            if key not in job.destinations:
                job.destinations.append(key)
    return {k: v for k, v in jobs.items() if v.destinations}


def _needed(image: ImagePlan) -> list[tuple[Descriptor, Delivery]]:
    """Each blob with each delivery that needs it: the image's, its missing referrers'."""
    out = [(b, d) for d in image.deliveries if d.pending for b in image.blobs]
    for d in image.deliveries:
        if d.error is None:
            out += [(b, d) for i in d.referrers for b in image.referrers[i].blobs]
    return out
