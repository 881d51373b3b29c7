"""Turn parsed list lines into source and target references for the chosen registries."""

from __future__ import annotations

from imageferry.core.imagelist import ListEntry, check_unique_targets
from imageferry.engine.locations import Target
from imageferry.engine.plan import Pairing

__all__ = ["Pairing", "pair_names", "pair_references"]


def pair_references(
    entries: list[ListEntry], source_host: str, targets: list[Target], origin: str
) -> list[Pairing]:
    """Each line's source on ``source_host`` and its name on every target.

    Raises InputError when two lines would write the same target tag.
    """
    return pair_names(entries, source_host, [(t.host, t.namespace) for t in targets], origin)


def pair_names(
    entries: list[ListEntry],
    source_host: str,
    destinations: list[tuple[str, str | None]],
    origin: str,
) -> list[Pairing]:
    """As :func:`pair_references`, for destinations given as (host, namespace)."""
    pairs = [
        (e, e.source_ref(source_host), [e.target_ref(host, ns) for host, ns in destinations])
        for e in entries
    ]
    for i in range(len(destinations)):
        check_unique_targets([(e, src, dsts[i]) for e, src, dsts in pairs], origin)
    return pairs
