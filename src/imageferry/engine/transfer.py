"""One transfer: a source, its targets and the run's policy, planned then executed."""

from __future__ import annotations

from imageferry.core.cancel import CancelToken
from imageferry.core.events import EventSink
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.manifest import Descriptor, Manifest, Platform
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.execute import ImageResult, execute_plan
from imageferry.engine.locations import Target
from imageferry.engine.plan import (
    Delivery,
    ImagePlan,
    Pairing,
    TransferPlan,
    blob_jobs,
    resolve_manifests,
    resolve_plan,
    with_referrers,
)
from imageferry.engine.referrers import (
    PackageReferrers,
    ReferrerChoice,
    ReferrerFinder,
    RegistryReferrers,
    source_lookup,
)


@quick_dataclass(frozen=True)
class Transfer:
    source: BlobSource
    targets: list[Target]
    policy: RetryPolicy
    cancel: CancelToken
    events: EventSink
    workers: int
    resolve_delivered: bool = True  # False: what every target has is not resolved further

    def plan(
        self,
        pairs: list[Pairing],
        platforms: tuple[Platform, ...] = (),
        referrers: ReferrerChoice | None = None,
    ) -> TransferPlan:
        """The plan; with ``referrers`` (enabled), each image's referrers planned with it."""
        return resolve_plan(
            pairs,
            self.source,
            self.targets,
            platforms=platforms,
            policy=self.policy,
            cancel=self.cancel,
            events=self.events,
            workers=self.workers,
            referrers=self._finder(referrers),
            resolve_delivered=self.resolve_delivered,
        )

    def plan_referrers_of_present(
        self, pairs: list[Pairing], tops: list[Descriptor], choice: ReferrerChoice
    ) -> TransferPlan:
        """For images every target already has (``tops``: each pair's top manifest), a plan
        that pushes only the referrers the targets lack: an incremental package carries new
        signatures of images its base delivered."""
        finder = self._finder(choice)
        images = []
        for (entry, src, dsts), top in zip(pairs, tops, strict=True):
            known = Manifest(b"", top.media_type, top.digest)  # its digest is all we need
            found = finder.find(src.repository, [known]) if finder else []
            if not found:
                continue
            deliveries = tuple(
                with_referrers(Delivery(i, dst, True), self.targets[i], found, self.policy,
                               self.cancel, {})
                for i, dst in enumerate(dsts)
            )  # fmt: skip
            images.append(ImagePlan(entry, src, deliveries, (known,), (), None, tuple(found)))
        return TransferPlan(images, blob_jobs(images))

    def _finder(self, choice: ReferrerChoice | None) -> ReferrerFinder | None:
        if choice is None or not choice.enabled:
            return None
        lookup = source_lookup(self.source, self.cancel)
        if lookup is not None:
            return RegistryReferrers(self.source, lookup, choice, _resolve)
        from imageferry.package.reader import PackageReader  # only a load reads packages

        if isinstance(self.source, PackageReader):
            return PackageReferrers(self.source, choice, _resolve)
        return None

    def execute(self, plan: TransferPlan) -> list[ImageResult]:
        return execute_plan(
            plan,
            self.source,
            self.targets,
            policy=self.policy,
            cancel=self.cancel,
            events=self.events,
            workers=self.workers,
        )


def _resolve(source: BlobSource, ref: Reference) -> tuple[list[Manifest], list[Descriptor]]:
    """A referrer's manifests and blobs: every platform of it (no --platform choice)."""
    return resolve_manifests(source, ref, ())
