"""One transfer: a source, its targets and the run's policy, planned then executed."""

from __future__ import annotations

from dataclasses import dataclass

from imageferry.core.cancel import CancelToken
from imageferry.core.events import EventSink
from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource
from imageferry.engine.execute import ImageResult, execute_plan
from imageferry.engine.locations import Target
from imageferry.engine.plan import Pairing, TransferPlan, resolve_plan


@dataclass(frozen=True)
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
    ) -> TransferPlan:
        return resolve_plan(
            pairs,
            self.source,
            self.targets,
            platforms=platforms,
            policy=self.policy,
            cancel=self.cancel,
            events=self.events,
            workers=self.workers,
            resolve_delivered=self.resolve_delivered,
        )

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
