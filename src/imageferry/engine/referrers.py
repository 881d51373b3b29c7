"""Signatures, SBOMs and attestations that travel with their images (OCI 1.1 referrers).

Planning asks a :class:`ReferrerFinder` for the referrers of every manifest an
image moves (the index and each child moved; referrers of referrers up to
``depth``), then each target what it lacks. Executing pushes a referrer after
its subject, byte for byte: its blobs, its manifests by digest, a cosign tag as
a tag; on a target without the referrers API it merges the fallback index tag
``sha256-<hex>`` (entries pushed by others are kept).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from imageferry.core.cancel import CancelToken
from imageferry.core.digest import Digest
from imageferry.core.errors import ImageFerryError, RegistryError
from imageferry.core.lazydata import lazy_dataclass, quick_dataclass
from imageferry.core.manifest import OCI_INDEX, Descriptor, Manifest, parse_manifest
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.locations import Target
from imageferry.registry.client import Registry
from imageferry.registry.referrers import (
    ReferrerLookup,
    artifact_type_of,
    fallback_tag,
    index_entry,
    manifest_doc,
)

if TYPE_CHECKING:  # package code is imported only by the runs that read or write packages
    from imageferry.package.meta import PackageMeta, ReferrerRecord
    from imageferry.package.reader import PackageReader

MAX_DEPTH = 3  # a signature on an SBOM on an image: depth 2
MAX_PER_IMAGE = 1000  # referrers of one image, all levels together


@quick_dataclass(frozen=True)
class ReferrerChoice:
    """Which referrers travel: none when not ``enabled``; only ``artifact_types`` if given."""

    enabled: bool = True
    artifact_types: tuple[str, ...] = ()
    depth: int = MAX_DEPTH

    def wants(self, artifact_type: str) -> bool:
        return not self.artifact_types or artifact_type in self.artifact_types


@lazy_dataclass(frozen=True)
class ReferrerPlan:
    """One referrer: its manifests (children first), blobs, and how it is named."""

    subject: Digest
    manifests: tuple[Manifest, ...]
    blobs: tuple[Descriptor, ...]
    artifact_type: str
    tag: str | None = None  # a cosign tag: pushed under it too

    @property
    def top(self) -> Manifest:
        return self.manifests[-1]

    @property
    def reference(self) -> str:
        return self.tag or str(self.top.digest)


class ReferrerFinder(Protocol):
    def find(self, repository: str, manifests: Sequence[Manifest]) -> list[ReferrerPlan]:
        """The referrers of ``manifests`` (an image's, the tagged one last), subjects first."""
        ...


Resolve = Callable[[BlobSource, Reference], tuple[list[Manifest], list[Descriptor]]]


class RegistryReferrers:
    """Finds referrers on a source registry (read through ``source``, maybe a cache)."""

    def __init__(
        self, source: BlobSource, lookup: ReferrerLookup, choice: ReferrerChoice, resolve: Resolve
    ) -> None:
        self.source = source
        self.lookup = lookup
        self.choice = choice
        self.resolve = resolve

    def find(self, repository: str, manifests: Sequence[Manifest]) -> list[ReferrerPlan]:
        seen = {str(m.digest) for m in manifests}
        frontier = [m.digest for m in manifests]
        plans: list[ReferrerPlan] = []
        for _ in range(self.choice.depth):
            found_now: list[Digest] = []
            for subject in frontier:
                for found in self.lookup.find(repository, subject, self.choice.artifact_types):
                    key = found.tag or found.reference
                    if key in seen:
                        continue
                    seen.add(key)
                    plan = self._plan(repository, subject, found.reference, found.tag)
                    if plan is not None:
                        plans.append(plan)
                        found_now.append(plan.top.digest)
                    if len(plans) > MAX_PER_IMAGE:
                        raise RegistryError(
                            f"{repository}@{manifests[-1].digest.short} has more than "
                            f"{MAX_PER_IMAGE} referrers; copy it with --no-referrers"
                        )
            frontier = found_now
        return plans

    def _plan(
        self, repository: str, subject: Digest, reference: str, tag: str | None
    ) -> ReferrerPlan | None:
        digest = None if tag else Digest.parse(reference)
        ref = Reference("", repository, tag, digest)
        manifests, blobs = self.resolve(self.source, ref)
        kind = artifact_type_of(manifests[-1])
        if not self.choice.wants(kind):
            return None
        return ReferrerPlan(subject, tuple(manifests), tuple(blobs), kind, tag)


class PackageReferrers:
    """The referrers a package's meta file lists, for ``load``; those in its base came
    with the base."""

    def __init__(self, reader: PackageReader, choice: ReferrerChoice, resolve: Resolve) -> None:
        self.reader = reader
        self.choice = choice
        self.resolve = resolve
        self.records: dict[tuple[str, str], list[ReferrerRecord]] = {}
        blobs = reader.meta.blob_map()
        for r in meta_referrers(reader.meta):
            record = blobs.get(r.digest)
            if record is not None and not record.in_base and choice.wants(r.artifact_type):
                self.records.setdefault((r.repository, r.image), []).append(r)

    def find(self, repository: str, manifests: Sequence[Manifest]) -> list[ReferrerPlan]:
        plans = []
        for r in self.records.get((repository, str(manifests[-1].digest)), []):
            ref = Reference("", repository, None, Digest.parse(r.digest))
            found, blobs = self.resolve(self.reader, ref)
            subject = Digest.parse(r.subject)
            plans.append(ReferrerPlan(subject, tuple(found), tuple(blobs), r.artifact_type, r.tag))
        return plans


def records_of(
    repository: str, image: Digest, plans: Sequence[ReferrerPlan]
) -> list[ReferrerRecord]:
    """What a package's meta file lists for ``plans`` of one image."""
    from imageferry.package.meta import ReferrerRecord

    return [
        ReferrerRecord(
            repository=repository,
            image=str(image),
            subject=str(p.subject),
            digest=str(p.top.digest),
            media_type=p.top.media_type,
            artifact_type=p.artifact_type,
            tag=p.tag,
        )
        for p in plans
    ]


def missing_on(
    target: Target,
    repository: str,
    plans: Sequence[ReferrerPlan],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> tuple[int, ...]:
    """Which of ``plans`` the target lacks (one HEAD each, only when there are some)."""
    missing = []
    for i, plan in enumerate(plans):
        ask = partial(target.sink.manifest_digest, repository, plan.reference)
        there = policy.run(ask, cancel)
        if there != plan.top.digest:
            missing.append(i)
    return tuple(missing)


def needs_fallback_index(
    target: Target,
    repository: str,
    plans: Sequence[ReferrerPlan],
    policy: RetryPolicy,
    cancel: CancelToken,
    apis: dict[int, bool],
    key: int,
) -> bool:
    """Whether pushing ``plans`` to ``target`` must maintain the fallback index tag: a
    registry without the referrers API, for referrers that name a subject. Whether the
    target has the API is asked once per run (``apis``, by target index ``key``)."""
    subjects = [p.subject for p in plans if p.tag is None]
    sink = target.sink
    if not subjects or not isinstance(sink, Registry):
        return False
    if key not in apis:
        lookup = ReferrerLookup(sink, cancel)
        apis[key] = policy.run(lambda: lookup.has_api(repository, subjects[0]), cancel)
    return not apis[key]


BlobsReady = Callable[[Sequence[Descriptor]], str | None]  # None, or why a blob failed


def push_referrers(
    plans: Sequence[ReferrerPlan],
    wanted: Sequence[int],
    target: Target,
    repository: str,
    *,
    fallback: bool,
    blobs_ready: BlobsReady,
    policy: RetryPolicy,
    cancel: CancelToken,
) -> int:
    """Push the ``wanted`` referrers after their subject (already there); returns how many.

    Raises ImageFerryError when a blob or manifest could not be delivered."""
    by_subject: dict[Digest, list[Manifest]] = {}
    for i in wanted:
        plan = plans[i]
        failed = blobs_ready(plan.blobs)
        if failed is not None:
            raise ImageFerryError(
                f"referrer {plan.top.digest.short} ({plan.artifact_type}): {failed}"
            )
        for manifest in plan.manifests:
            reference = str(manifest.digest)
            if manifest is plan.top:
                reference = plan.reference
            cancel.check()
            policy.run(partial(target.sink.put_manifest, repository, reference, manifest), cancel)
        if plan.tag is None:
            by_subject.setdefault(plan.subject, []).append(plan.top)
    sink = target.sink
    if fallback and isinstance(sink, Registry):
        for subject, tops in by_subject.items():
            policy.run(partial(merge_fallback, sink, repository, subject, tops, cancel), cancel)
    return len(wanted)


_MERGE_LOCK = threading.Lock()  # one read-modify-write of a fallback index at a time


def merge_fallback(
    registry: Registry, repository: str, subject: Digest, tops: list[Manifest], cancel: CancelToken
) -> None:
    """Add ``tops`` to the fallback index of ``subject``; every entry already there stays."""
    with _MERGE_LOCK:
        current = ReferrerLookup(registry, cancel).fallback_index(repository, subject)
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX}
        if current is not None:
            doc = manifest_doc(current)
        entries: list[Any] = doc.get("manifests") or []
        have = {e.get("digest") for e in entries if isinstance(e, dict)}
        added = [index_entry(t) for t in tops if str(t.digest) not in have]
        if not added:
            return
        doc["manifests"] = [*entries, *added]
        raw = json.dumps(doc, indent=2).encode()
        tag = fallback_tag(subject)
        index = parse_manifest(raw, OCI_INDEX, f"referrers index {tag} of {repository}")
        registry.put_manifest(repository, tag, index)


def source_lookup(source: BlobSource, cancel: CancelToken) -> ReferrerLookup | None:
    """Referrer lookups on ``source`` when it is a registry (maybe behind a cache)."""
    registry = getattr(source, "source", source)  # a CachedSource reads a Registry
    return ReferrerLookup(registry, cancel) if isinstance(registry, Registry) else None


def referrer_kinds(lookup: ReferrerLookup, repository: str, digest: Digest) -> tuple[str, ...]:
    """What refers to ``digest`` (for ``check``): artifact types, and ``cosign .sig`` etc."""
    prefix = len(fallback_tag(digest))
    return tuple(
        f"cosign {f.tag[prefix:]}" if f.tag else f.artifact_type
        for f in lookup.find(repository, digest)
    )


def record_kinds(meta: PackageMeta) -> dict[tuple[str, str], tuple[str, ...]]:
    """What a package lists as referring to each (repository, image digest), for ``check``."""
    kinds: dict[tuple[str, str], tuple[str, ...]] = {}
    for r in meta_referrers(meta):
        kind = f"cosign {r.tag[len(r.tag.rsplit('.', 1)[0]) :]}" if r.tag else r.artifact_type
        key = (r.repository, r.image)
        kinds[key] = (*kinds.get(key, ()), kind)
    return kinds


def meta_referrers(meta: PackageMeta) -> list[ReferrerRecord]:
    """The referrers a package lists (none in image-transmit's packages)."""
    return list(getattr(meta, "referrers", None) or [])
