"""Content digests and the verifying stream every byte passes through."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from imageferry.core.errors import DigestMismatchError, InputError
from imageferry.core.lazydata import quick_dataclass

# Every algorithm imageferry verifies, with the length of its hex digest: the one table
# for digests in references, package entry names and cache file names.
HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_ALGORITHMS = HEX_LENGTH
_DIGEST_RE = re.compile(r"^([a-z0-9]+):([a-f0-9]+)$")


@quick_dataclass(frozen=True, order=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        m = _DIGEST_RE.match(text)
        if m and m.group(1) not in _ALGORITHMS:
            raise InputError(
                f"'{text[:100]}': digest algorithm '{m.group(1)[:20]}' is not supported "
                "(imageferry checks sha256, sha384 and sha512)"
            )
        if not m or _ALGORITHMS[m.group(1)] != len(m.group(2)):
            raise InputError(
                f"'{text[:100]}' is not a valid digest: expected sha256:<64 hex digits> "
                "(or sha384:<96>, sha512:<128>)"
            )
        return cls(m.group(1), m.group(2))

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        return f"{self.algorithm}:{self.hex[:12]}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def verified_chunks(
    chunks: Iterable[bytes], digest: Digest, size: int, what: str
) -> Iterator[bytes]:
    """Yield ``chunks`` unchanged, but never let the last one out unverified.

    One chunk is held back: the final chunk is yielded only after the digest and
    size of the whole stream were checked, so a consumer that uploads as it
    reads never completes an upload of wrong bytes. Raises
    :class:`DigestMismatchError` on a wrong digest or size.
    """
    hasher = digest.hasher()
    seen = 0
    held: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        hasher.update(chunk)
        seen += len(chunk)
        if seen > size:
            raise DigestMismatchError(
                f"{what}: more bytes than the expected {size}",
                expected=str(digest),
                actual="(too long)",
            )
        if held is not None:
            yield held
        held = chunk
    actual = Digest(digest.algorithm, hasher.hexdigest())
    if seen != size or actual != digest:
        raise DigestMismatchError(
            f"{what}: expected {digest} ({size} bytes), got {actual} ({seen} bytes)",
            expected=str(digest),
            actual=str(actual),
        )
    if held is not None:
        yield held


def is_digest_path(algorithm: str, hex_: str) -> bool:
    """``<algorithm>/<hex>`` names a blob: a known algorithm and a hex digest of its length."""
    length = HEX_LENGTH.get(algorithm)
    return length is not None and len(hex_) == length and _HEX_RE.fullmatch(hex_) is not None


_HEX_RE = re.compile(r"[0-9a-f]+")
