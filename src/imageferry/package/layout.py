"""Where every blob goes, decided before the first byte moves.

Without a size limit, blobs are spread over N data files, largest first onto
the least-filled file, and each gets a fixed offset. Workers then write in
parallel at their offsets — into one file too, which is how ``--single-file``
needs no temp copy.

With a size limit (:class:`Budget`), no data file may pass it: blobs are packed
first-fit (largest first) into as few files as the limit allows, and a blob
that cannot fit in an empty file is split into parts — one tar entry each, in
consecutive files. Offsets stay fixed, so parallel writes and resume work the
same way.
"""

from __future__ import annotations

from dataclasses import field

from imageferry.core.lazydata import quick_dataclass
from imageferry.package.tarfmt import BLOCK, END_OF_ARCHIVE, entry_size


@quick_dataclass(frozen=True)
class Item:
    """A blob to place in the package."""

    digest: str
    size: int
    media_type: str


@quick_dataclass(frozen=True)
class Piece:
    """One tar entry of a blob: the whole blob (``number`` 0) or part ``number`` of it."""

    file: int
    offset: int  # of the tar header
    size: int  # data bytes in this entry
    number: int = 0

    @property
    def data_offset(self) -> int:
        return self.offset + BLOCK


@quick_dataclass(frozen=True)
class Slot:
    """Where a blob lies in the data files."""

    file: int
    offset: int  # of the tar header (of the first part, for a split blob)
    size: int
    media_type: str
    parts: tuple[Piece, ...] = field(default=())  # empty unless the blob is split

    @property
    def data_offset(self) -> int:
        return self.offset + BLOCK

    @property
    def split(self) -> bool:
        return bool(self.parts)

    def pieces(self) -> tuple[Piece, ...]:
        """The entries holding the blob's bytes, in order."""
        return self.parts or (Piece(self.file, self.offset, self.size),)


@quick_dataclass(frozen=True)
class Layout:
    """Where every blob of a package lies, and where each data file ends."""

    slots: dict[str, Slot]
    ends: tuple[int, ...]  # where each file's entries end

    @property
    def files(self) -> int:
        return len(self.ends)

    def to_json(self) -> dict:
        return {"ends": list(self.ends), "slots": {d: _slot_json(s) for d, s in self.slots.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Layout:
        slots = {d: _slot_from_json(v) for d, v in data["slots"].items()}
        return cls(slots, tuple(int(e) for e in data["ends"]))


def _slot_json(slot: Slot) -> list:
    head = [slot.file, slot.offset, slot.size, slot.media_type]
    return head + [[[p.file, p.offset, p.size] for p in slot.parts]] if slot.parts else head


def _slot_from_json(v: list) -> Slot:
    listed = v[4] if len(v) > 4 else []
    parts = tuple(Piece(int(p[0]), int(p[1]), int(p[2]), n) for n, p in enumerate(listed, 1))
    return Slot(int(v[0]), int(v[1]), int(v[2]), str(v[3]), parts)


@quick_dataclass(frozen=True)
class Budget:
    """What a data file of at most ``limit`` bytes on disk can hold.

    With zstd each entry is its own frame, which for incompressible data (gzip
    layers) is a little larger than the entry: ``entry`` adds a safe bound of
    that growth (frame header and 3 bytes per block of at most 128 KiB).
    """

    limit: int
    zstd: bool = False

    def entry(self, size: int) -> int:
        raw = entry_size(size)
        return raw + (128 + raw // 16384 if self.zstd else 0)

    @property
    def capacity(self) -> int:
        """Room for entries once the end-of-archive marker is counted."""
        end = len(END_OF_ARCHIVE)
        return self.limit - end - (128 + end // 16384 if self.zstd else 0)

    def max_data(self, room: int) -> int:
        """The most data bytes (a multiple of 512) one entry may hold within ``room``."""
        n = (room - BLOCK) // BLOCK * BLOCK
        while n > 0 and self.entry(n) > room:
            n -= max(BLOCK, (self.entry(n) - room + BLOCK - 1) // BLOCK * BLOCK)
        return max(n, 0)


def plan_layout(items: list[Item], files: int, budget: Budget | None = None) -> Layout:
    """Deterministic for the same items: a rerun computes the same layout.

    With a ``budget``, the spread over ``files`` files is kept when every file
    fits; otherwise blobs are packed into as few files as the limit allows.
    """
    spread = _spread(items, files)
    if budget is None or max(file_costs(spread, budget)) <= budget.capacity:
        return spread
    return _pack(items, budget)


def _spread(items: list[Item], files: int) -> Layout:
    ends = [0] * max(1, files)
    slots: dict[str, Slot] = {}
    for item in _ordered(items):
        k = min(range(len(ends)), key=lambda i: (ends[i], i))
        slots[item.digest] = Slot(k, ends[k], item.size, item.media_type)
        ends[k] += entry_size(item.size)
    used = max([0] + [s.file for s in slots.values()]) + 1
    return Layout(slots, tuple(ends[:used]))


def _ordered(items: list[Item]) -> list[Item]:
    unique = {i.digest: i for i in items}
    return sorted(unique.values(), key=lambda i: (-i.size, i.digest))


class _Packer:
    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.ends: list[int] = []
        self.costs: list[int] = []
        self.open: list[int] = []  # files that still have room for an entry

    def new_file(self) -> int:
        self.ends.append(0)
        self.costs.append(0)
        self.open.append(len(self.ends) - 1)
        return len(self.ends) - 1

    def place(self, k: int, size: int, number: int = 0) -> Piece:
        piece = Piece(k, self.ends[k], size, number)
        self.ends[k] += entry_size(size)
        self.costs[k] += self.budget.entry(size)
        if self.room(k) < self.budget.entry(0):
            self.open.remove(k)
        return piece

    def room(self, k: int) -> int:
        return self.budget.capacity - self.costs[k]

    def split(self, size: int) -> tuple[Piece, ...]:
        """Parts of a blob too large for one file, from the last file onwards."""
        parts: list[Piece] = []
        k = len(self.ends) - 1 if self.ends else self.new_file()
        left = size
        while left:
            n = min(self.budget.max_data(self.room(k)), left)
            if n <= 0:
                k = self.new_file()
                continue
            parts.append(self.place(k, n, len(parts) + 1))
            left -= n
        return tuple(parts)

    def first_fit(self, size: int) -> int:
        cost = self.budget.entry(size)
        for k in self.open:
            if self.costs[k] + cost <= self.budget.capacity:
                return k
        return self.new_file()


def _pack(items: list[Item], budget: Budget) -> Layout:
    packer = _Packer(budget)
    slots: dict[str, Slot] = {}
    ordered = _ordered(items)
    for item in ordered:
        if budget.entry(item.size) > budget.capacity:
            parts = packer.split(item.size)
            first = parts[0]
            slots[item.digest] = Slot(first.file, first.offset, item.size, item.media_type, parts)
    for item in ordered:
        if item.digest not in slots:
            piece = packer.place(packer.first_fit(item.size), item.size)
            slots[item.digest] = Slot(piece.file, piece.offset, item.size, item.media_type)
    if not packer.ends:
        packer.new_file()
    return Layout(slots, tuple(packer.ends))


def file_costs(layout: Layout, budget: Budget) -> list[int]:
    """What each file's entries take of the budget (zstd growth included)."""
    costs = [0] * layout.files
    for slot in layout.slots.values():
        for piece in slot.pieces():
            costs[piece.file] += budget.entry(piece.size)
    return costs
