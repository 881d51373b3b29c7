"""The one storage contract: where blobs and manifests come from and go to.

A registry, an offline package and the blob cache each implement these, so
copy, save and load are one engine with different ends. Sources hand out raw
chunks; the engine verifies every byte against its digest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from imageferry.core.digest import Digest
from imageferry.core.manifest import Descriptor, Manifest


class BlobSource(Protocol):
    name: str

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest for a tag or digest, bytes exactly as stored."""
        ...

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        """Raw chunks of the blob (unverified; close the iterator when done early)."""
        ...

    def close(self) -> None: ...


class BlobSink(Protocol):
    name: str

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        """Digest of what ``reference`` names now, or None when absent."""
        ...

    def has_blob(self, repository: str, desc: Descriptor) -> bool: ...

    def mount_blob(self, repository: str, from_repository: str, desc: Descriptor) -> bool:
        """Link a blob the sink holds in another repository; False when it cannot."""
        ...

    def put_blob(self, repository: str, desc: Descriptor, chunks: Iterable[bytes]) -> None: ...

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None: ...

    def close(self) -> None: ...
