"""The tar dialect of data files: USTAR headers, content-addressed names, nothing else.

Readers never trust an entry: only ``blobs/<alg>/<hex>``, ``oci-layout`` and
``index.json`` regular files are accepted, and each must match the meta.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable, Iterable, Iterator

from imageferry.core.digest import is_digest_path

BLOCK = 512
USTAR_MAX_SIZE = 8**11 - 1  # 11 octal digits: one byte short of 8 GiB
_SIZE_FIELD = slice(124, 136)
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_BLOB_NAME = re.compile(r"^blobs/([a-z0-9]+)/([a-f0-9]+)(?:\.part([0-9]{4,6}))?$")
MAX_PARTS = 999_999  # part numbers have at most six digits
LAYOUT_NAMES = ("oci-layout", "index.json")


def blob_name(digest: str) -> str:
    algorithm, _, hex_ = digest.partition(":")
    return f"blobs/{algorithm}/{hex_}"


def part_name(digest: str, number: int) -> str:
    """The entry of part ``number`` (1-based) of a blob split across data files.

    ``cat <hex>.part0001 <hex>.part0002 … > <hex>`` rebuilds the blob after extraction.
    """
    return f"{blob_name(digest)}.part{number:04d}"


def padding(size: int) -> int:
    return (BLOCK - size % BLOCK) % BLOCK


def entry_size(size: int) -> int:
    """Header plus data plus padding."""
    return BLOCK + size + padding(size)


def header(name: str, size: int, mtime: int) -> bytes:
    """One USTAR header block. Sizes of 8 GiB and more use the base-256 size field.

    That GNU extension (read by GNU tar, bsdtar, Python's tarfile and Go's
    archive/tar) keeps every entry at one header block, which the fixed offsets
    of the layout need; a PAX extended header would add blocks.
    """
    info = tarfile.TarInfo(name)
    info.size = min(size, USTAR_MAX_SIZE)
    info.mtime = mtime
    info.mode = 0o644
    info.type = tarfile.REGTYPE
    data = info.tobuf(format=tarfile.USTAR_FORMAT)
    if size > USTAR_MAX_SIZE:
        data = _with_checksum(
            data[: _SIZE_FIELD.start]
            + b"\x80"
            + size.to_bytes(11, "big")  # base-256
            + data[_SIZE_FIELD.stop :]
        )
    assert len(data) == BLOCK
    return data


def _with_checksum(block: bytes) -> bytes:
    blank = block[:148] + b" " * 8 + block[156:]
    return blank[:148] + b"%06o\0 " % sum(blank) + blank[156:]


def parse_header(block: bytes, where: str) -> tuple[str, int] | None:
    """(name, size) of a header block, None at the end marker. Raises ValueError if unsafe."""
    if block == b"\0" * BLOCK:
        return None
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except tarfile.TarError as exc:
        raise ValueError(f"{where}: not a tar header ({exc})") from None
    name = info.name
    if info.size < 0:
        raise ValueError(f"{where}: entry '{name}' has a negative size")
    if not info.isreg():
        raise ValueError(f"{where}: entry '{name}' is not a regular file (links are refused)")
    if name.startswith("/") or ".." in name.split("/") or "\\" in name:
        raise ValueError(f"{where}: entry '{name}' has an unsafe path")
    if not (blob_of_entry(name) or name in LAYOUT_NAMES):
        raise ValueError(f"{where}: unexpected entry '{name}'")
    return name, info.size


def digest_of_name(name: str) -> str | None:
    """The digest of a whole blob's entry; None for a part or a layout file."""
    found = blob_of_entry(name)
    return found[0] if found and found[1] == 0 else None


def blob_of_entry(name: str) -> tuple[str, int] | None:
    """(digest, part number) of a blob or part entry (0 for a whole blob), else None.

    Only a known algorithm with a hex digest of its length names a blob."""
    m = _BLOB_NAME.match(name)
    if m is None or not is_digest_path(m.group(1), m.group(2)):
        return None
    return f"{m.group(1)}:{m.group(2)}", int(m.group(3) or 0)


def read_span(read: Callable[[int], bytes], size: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """Up to ``size`` bytes from ``read``, in chunks; stops early at end of data."""
    left = size
    while left:
        data = read(min(left, chunk))
        if not data:
            return
        left -= len(data)
        yield data


class ByteRanges:
    """A blob's chunks handed out as consecutive byte ranges (one per part)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._held = b""

    def take(self, size: int) -> Iterator[bytes]:
        """Up to ``size`` bytes, in chunks; fewer only when the blob ends early."""
        left = size
        while left:
            data: bytes | None = self._held
            while not data:
                data = next(self._chunks, None)
                if data is None:
                    return
            self._held = data[left:]
            data = data[:left]
            left -= len(data)
            yield data

    def rest(self) -> bool:
        """Drain the chunks (so a verifying stream runs its check); True if bytes were left."""
        extra = bool(self._held)
        for chunk in self._chunks:
            extra = extra or bool(chunk)
        return extra
