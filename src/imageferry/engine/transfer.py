"""One transfer: a source, its targets and the run's policy, planned then executed."""

from __future__ import annotations

from dataclasses import dataclass

from imageferry.core.cancel import CancelToken
from imageferry.core.events import EventSink
from imageferry.core.manifest import Descriptor, Manifest, Platform
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.execute import ImageResult, execute_plan
from imageferry.engine.locations import Target
from imageferry.engine.plan import Pairing, TransferPlan, resolve_manifests, resolve_plan
from imageferry.engine.referrers import (
    PackageReferrers,
    ReferrerChoice,
    ReferrerFinder,
    RegistryReferrers,
)
from imageferry.package.reader import PackageReader


@dataclass(frozen=True)
class Transfer:
    source: BlobSource
    targets: list[Target]
    policy: RetryPolicy
    cancel: CancelToken
    events: EventSink
    workers: int

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
        )

    def _finder(self, choice: ReferrerChoice | None) -> ReferrerFinder | None:
        if choice is None or not choice.enabled:
            return None
        if isinstance(self.source, PackageReader):
            return PackageReferrers(self.source, choice, _resolve)
        return RegistryReferrers(self.source, choice, self.cancel, _resolve)

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
