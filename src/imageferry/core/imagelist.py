"""The image list: one image per line, ``#`` comments, ``src -> newname[:tag]`` renames.

Parsing reports every bad line with its number before anything runs. The
registry host written in a line is only a hint for humans: it is replaced by
the chosen source's host (lines without a host get it), as image-transmit did.
"""

from __future__ import annotations

from imageferry.core.errors import InputError
from imageferry.core.lazydata import quick_dataclass
from imageferry.core.reference import Reference

RENAME_ARROW = "->"


@quick_dataclass(frozen=True)
class ListEntry:
    line: int
    text: str
    source: Reference
    rename: Reference | None = None

    def source_ref(self, host: str) -> Reference:
        return self.source.with_host(host)

    def target_ref(self, host: str, namespace: str | None = None) -> Reference:
        """Where this image lands on a target with ``host`` and optional namespace rewrite."""
        src = self.source
        if self.rename is not None:
            tag = self.rename.tag or src.tag
            src = Reference("", self.rename.repository, tag, src.digest if tag is None else None)
        return on_target(src, host, namespace)


def on_target(ref: Reference, host: str, namespace: str | None = None) -> Reference:
    """``ref`` as it is named on a target: its host, and ``namespace`` replacing the path.

    A reference with a tag is pushed by tag only; one without, by its digest.
    """
    repo = ref.repository
    if namespace:
        repo = f"{namespace.strip('/')}/{repo.rsplit('/', 1)[-1]}"
    digest = ref.digest if ref.tag is None else None
    return Reference("", repo, ref.tag, digest).with_host(host)


def _strip_comment(raw: str) -> str:
    line = raw.strip()
    if line.startswith("#"):
        return ""
    hash_pos = line.find(" #")
    if hash_pos >= 0:
        line = line[:hash_pos]
    return line.strip()


def parse_image_list(text: str, origin: str = "image list") -> list[ListEntry]:
    """Parse the whole list; raise one :class:`InputError` naming every bad line."""
    entries: list[ListEntry] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw)
        if not line:
            continue
        try:
            entries.append(_parse_line(number, line))
        except InputError as exc:
            problems.append(f"{origin}, line {number}: {exc} (in '{raw.strip()}')")
    if problems:
        raise InputError("\n".join(problems) + "\nFix these lines and run again.")
    return entries


# Characters a Chinese input method types instead of the ASCII ones the grammar wants.
_LOOKALIKES = {
    "→": "'->' (two ASCII characters) for a rename, not the arrow '→'",
    "⇒": "'->' (two ASCII characters) for a rename, not '⇒'",
    "：": "an ASCII ':' before the tag, not the full-width '：'",
    "／": "an ASCII '/', not the full-width '／'",
    "＠": "an ASCII '@' before a digest, not the full-width '＠'",
    "－": "an ASCII '-', not the full-width '－'",
}


def _parse_line(number: int, line: str) -> ListEntry:
    for char, advice in _LOOKALIKES.items():
        if char in line:
            raise InputError(f"use {advice}")
    if RENAME_ARROW in line:
        left, _, right = line.partition(RENAME_ARROW)
        if RENAME_ARROW in right:
            raise InputError("more than one '->' in a line")
        if not left.strip() or not right.strip():
            raise InputError("a rename needs 'source -> newname[:tag]'")
        rename = Reference.parse(right)
        if rename.digest is not None:
            raise InputError("the new name cannot carry a digest (use newname[:tag])")
        return ListEntry(number, line, Reference.parse(left), rename)
    return ListEntry(number, line, Reference.parse(line))


def check_unique_targets(pairs: list[tuple[ListEntry, Reference, Reference]], origin: str) -> None:
    """Two lines writing one target tag from different sources would race; refuse them."""
    seen: dict[str, tuple[ListEntry, Reference]] = {}
    problems = []
    for entry, source, target in pairs:
        if target.tag is None:
            continue
        key = str(target)
        first, first_source = seen.setdefault(key, (entry, source))
        if first is not entry and first_source != source:
            problems.append(
                f"{origin}, lines {first.line} and {entry.line} both write {key} from "
                "different images"
            )
    if problems:
        raise InputError("\n".join(problems) + "\nRename one of them with '-> newname:tag'.")


def parse_shard(text: str) -> tuple[int, int]:
    """``i/n`` (1 ≤ i ≤ n) → (i, n)."""
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not 1 <= i <= n:
        raise InputError(f"--shard '{text}' must look like i/n with 1 <= i <= n, e.g. 2/4")
    return i, n


def shard(entries: list[ListEntry], i: int, n: int) -> list[ListEntry]:
    """Share ``i`` of ``n``: every n-th line, so n machines split one list with no coordination."""
    return entries[i - 1 :: n]
