"""Version order of image tags, for ``watch``: which tags are "at or above" a listed one.

The rule, in full (docs/watch.md says the same):

- A tag is a version when it is ``[v|V]N(.N)*`` optionally followed by ``-SUFFIX``
  (``1``, ``1.25``, ``v2.0.3``, ``1.4.0-rc.1``, ``20240501``). Anything else
  (``latest``, ``stable``, ``main-abc123``, ``1.2_beta``) is not a version.
- Numeric parts are compared as numbers (``1.10`` > ``1.9``); missing parts
  count as 0 (``1.2`` == ``1.2.0``); the leading ``v`` is ignored.
- With equal numbers, a tag with a suffix ranks *below* the tag without one
  (``1.4.0-rc.1`` < ``1.4.0``), as semantic versioning orders pre-releases;
  two suffixes compare part by part (split at ``.`` and ``-``), numbers as
  numbers and below words.
"""

from __future__ import annotations

import re
from functools import total_ordering

from imageferry.core.lazydata import quick_dataclass

_VERSION_RE = re.compile(r"^[vV]?(\d{1,18}(?:\.\d{1,18}){0,9})(?:-([0-9A-Za-z][0-9A-Za-z.-]*))?$")


@total_ordering
@quick_dataclass(frozen=True)
class TagVersion:
    numbers: tuple[int, ...]  # trailing zeros removed: 1.2 and 1.2.0 are equal
    suffix: tuple[tuple[int, int | str], ...] | None  # None: a release

    def _key(self) -> tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]:
        return (self.numbers, 1 if self.suffix is None else 0, self.suffix or ())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TagVersion):
            return NotImplemented
        return self._key() < other._key()


def _suffix_key(text: str) -> tuple[tuple[int, int | str], ...]:
    parts = [p for p in re.split(r"[.-]", text) if p]
    # (0, n) sorts numbers before words (1, w); numbers among themselves as numbers
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def parse_version(tag: str) -> TagVersion | None:
    """The tag's version, or None when the tag is not one (see the module's rule)."""
    m = _VERSION_RE.match(tag)
    if not m:
        return None
    numbers = [int(p) for p in m.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    suffix = _suffix_key(m.group(2)) if m.group(2) else None
    return TagVersion(tuple(numbers), suffix)


def tags_at_or_above(tags: list[str], floor: str) -> list[str]:
    """The version tags of ``tags`` not below ``floor``, in version order.

    When ``floor`` is not a version itself, only ``floor`` is followed: it is
    returned when present.
    """
    low = parse_version(floor)
    if low is None:
        return [floor] if floor in tags else []
    chosen = [(v, t) for t in tags if (v := parse_version(t)) is not None and not v < low]
    return [t for _, t in sorted(chosen, key=lambda pair: (pair[0]._key(), pair[1]))]


def version_sorted(tags: list[str]) -> list[str]:
    """Versions first in version order, then the other tags by name."""
    versions = [(v, t) for t in tags if (v := parse_version(t)) is not None]
    others = sorted(t for t in tags if parse_version(t) is None)
    return [t for _, t in sorted(versions, key=lambda p: (p[0]._key(), p[1]))] + others
