"""Where every blob goes, decided before the first byte moves.

Blobs are spread over N data files, largest first onto the least-filled file,
and each gets a fixed offset. Workers then write in parallel at their
offsets — into one file too, which is how ``--single-file`` needs no temp copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageferry.package.tarfmt import BLOCK, entry_size


@dataclass(frozen=True)
class Item:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Slot:
    file: int
    offset: int  # of the tar header
    size: int
    media_type: str

    @property
    def data_offset(self) -> int:
        return self.offset + BLOCK


@dataclass(frozen=True)
class Layout:
    slots: dict[str, Slot]
    ends: tuple[int, ...]  # where each file's entries end

    @property
    def files(self) -> int:
        return len(self.ends)

    def to_json(self) -> dict:
        return {
            "ends": list(self.ends),
            "slots": {d: [s.file, s.offset, s.size, s.media_type] for d, s in self.slots.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        slots = {
            d: Slot(int(v[0]), int(v[1]), int(v[2]), str(v[3])) for d, v in data["slots"].items()
        }
        return cls(slots, tuple(int(e) for e in data["ends"]))


def plan_layout(items: list[Item], files: int) -> Layout:
    """Deterministic for the same items: a rerun computes the same layout."""
    ends = [0] * max(1, files)
    slots: dict[str, Slot] = {}
    for item in sorted(items, key=lambda i: (-i.size, i.digest)):
        if item.digest in slots:
            continue
        k = min(range(len(ends)), key=lambda i: (ends[i], i))
        slots[item.digest] = Slot(k, ends[k], item.size, item.media_type)
        ends[k] += entry_size(item.size)
    used = max([0] + [s.file for s in slots.values()]) + 1
    return Layout(slots, tuple(ends[:used]))
