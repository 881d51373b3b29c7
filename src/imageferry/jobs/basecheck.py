"""What an incremental package leaves to its base must already be in the target.

Before a load pushes anything, every blob and image the package does not
carry is looked up in the target. Registries link blobs per repository, so
a layer the base package put into ``team/base`` is missing from
``team/app`` until it is mounted there: the check looks for it in the
repositories of this load, of the base package (when its meta file is found
beside this one) and of the target's catalog, and mounts it from there.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from imageferry.core.cancel import CancelToken
from imageferry.core.errors import Cancelled, ImageFerryError, PackageError
from imageferry.core.imagelist import on_target
from imageferry.core.manifest import Descriptor
from imageferry.core.reference import Reference
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSink
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import (
    PackageReader,
    Target,
    open_package_reader,
    target_repositories,
)
from imageferry.engine.plan import TransferPlan, target_digest
from imageferry.jobs.pairing import Pairing

MAX_CANDIDATES = 200


def base_name(reader: PackageReader) -> str:
    return reader.meta.base.file if reader.meta.base else "its base package"


def images_in_base(
    reader: PackageReader,
    pairs: list[Pairing],
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> list[ImageResult]:
    """Images the package leaves wholly to its base: the target must have them already.

    A target that cannot be asked fails its rows; it does not stop the others.
    """
    rows, missing = [], []
    for entry, src, dsts in pairs:
        digest = reader.blob_map_entry(src).digest
        for i, dst in enumerate(dsts):
            row = partial(ImageResult, entry.line, str(src), str(dst), targets[i].name)
            try:
                there = target_digest(targets[i], dst, policy, cancel)
            except Cancelled:
                raise
            except ImageFerryError as exc:
                rows.append(row("failed", digest, str(exc)))
                continue
            if there is not None and str(there) == digest:
                rows.append(row("skipped", digest))
            else:
                missing.append(f"{dst} on {targets[i].name}")
    if missing:
        raise PackageError(
            f"{reader.name} is incremental and leaves {len(missing)} image(s) to its base "
            f"package, but the target lacks them ({', '.join(missing[:3])}). "
            f"Load {base_name(reader)} first, then this package."
        )
    return rows


def ensure_base_blobs(
    reader: PackageReader,
    plan: TransferPlan,
    targets: list[Target],
    policy: RetryPolicy,
    cancel: CancelToken,
) -> int:
    """Mount base blobs into the repositories that need them; returns how many were mounted."""
    records = reader.meta.blob_map()
    finder = _Finder(reader, plan, targets, policy, cancel)
    mounted, missing = 0, 0
    for image in plan.images:
        for blob in image.blobs:
            record = records.get(str(blob.digest))
            if record is None or not record.in_base:
                continue
            for d in image.deliveries:
                if not d.pending:
                    continue
                sink = targets[d.target].sink
                repo = d.ref.repository
                if _has(sink, repo, blob, policy, cancel):
                    continue
                found = finder.find(d.target, blob, exclude=repo)
                if found and _mount(sink, repo, found, blob, policy, cancel):
                    mounted += 1
                else:
                    missing += 1
    if missing:
        raise PackageError(
            f"{reader.name} is incremental: {missing} layer(s) it leaves to its base package are "
            f"not in the target. Load {base_name(reader)} first, then this package."
        )
    return mounted


class _Finder:
    """Looks for a blob in other repositories of one target, best guesses first."""

    def __init__(
        self,
        reader: PackageReader,
        plan: TransferPlan,
        targets: list[Target],
        policy: RetryPolicy,
        cancel: CancelToken,
    ) -> None:
        self.reader, self.plan, self.targets = reader, plan, targets
        self.policy, self.cancel = policy, cancel
        self._candidates: dict[int, list[str]] = {}
        self._last: dict[int, str] = {}

    def find(self, t: int, blob: Descriptor, exclude: str) -> str | None:
        if t not in self._candidates:
            self._candidates[t] = self._gather(t)
        ordered = [self._last[t]] if t in self._last else []
        ordered += [c for c in self._candidates[t] if c not in ordered]
        sink = self.targets[t].sink
        for repo in ordered[:MAX_CANDIDATES]:
            if repo != exclude and _has(sink, repo, blob, self.policy, self.cancel):
                self._last[t] = repo
                return repo
        return None

    def _gather(self, t: int) -> list[str]:
        target = self.targets[t]
        names = [d.ref.repository for i in self.plan.images for d in i.deliveries if d.target == t]
        for ref in _base_images(self.reader):
            names.append(on_target(ref, target.host, target.namespace).repository)
        names += target_repositories(target)
        return list(dict.fromkeys(names))


def _base_images(reader: PackageReader) -> list[Reference]:
    """The base package's images, when its meta file lies beside this one (or a dated sibling)."""
    if reader.meta.base is None:
        return []
    name = reader.meta.base.file
    for path in [reader.folder / name, *reader.folder.parent.glob(f"*/{name}")]:
        if path.is_file():
            try:
                base = open_package_reader(Path(path))
            except PackageError:
                return []
            return [img.reference() for img in base.meta.images]
    return []


def _has(
    sink: BlobSink, repo: str, blob: Descriptor, policy: RetryPolicy, cancel: CancelToken
) -> bool:
    return policy.run(lambda: sink.has_blob(repo, blob), cancel)


def _mount(
    sink: BlobSink,
    repo: str,
    source_repo: str,
    blob: Descriptor,
    policy: RetryPolicy,
    cancel: CancelToken,
) -> bool:
    return policy.run(lambda: sink.mount_blob(repo, source_repo, blob), cancel)
