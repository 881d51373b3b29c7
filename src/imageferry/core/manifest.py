"""Manifests as the registry serves them: raw bytes kept byte for byte, parsed for links.

Supported: Docker v2 schema 2 and manifest list, OCI image manifest, OCI
index and OCI artifacts (any manifest with a config and layers, or with
``blobs``). Schema 1 is refused with advice.
"""

from __future__ import annotations

import json
from typing import Any

from imageferry.core.digest import Digest
from imageferry.core.errors import InputError, UnsupportedManifestError
from imageferry.core.lazydata import lazy_dataclass, quick_dataclass

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST, *SCHEMA1))
MAX_ENTRIES = 10000  # layers or child manifests in one manifest
FOREIGN_LAYER_TYPES = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)


@lazy_dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"platform '{text}' must look like os/arch or os/arch/variant")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        return (
            self.os == other.os
            and self.architecture == other.architecture
            and (self.variant is None or self.variant == other.variant)
        )

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@quick_dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        try:
            plat = data.get("platform")
            platform = (
                Platform(plat["os"], plat["architecture"], plat.get("variant"))
                if isinstance(plat, dict)
                else None
            )
            return cls(
                media_type=str(data.get("mediaType", "")),
                digest=Digest.parse(data["digest"]),
                size=int(data["size"]),
                platform=platform,
                urls=tuple(data.get("urls") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnsupportedManifestError(f"{where}: malformed descriptor ({exc})") from exc

    @property
    def is_foreign(self) -> bool:
        return self.media_type in FOREIGN_LAYER_TYPES and bool(self.urls)


@quick_dataclass(frozen=True)
class Manifest:
    """A manifest exactly as served. ``digest`` is the sha256 of ``raw``."""

    raw: bytes
    media_type: str
    digest: Digest
    children: tuple[Descriptor, ...] = ()  # index entries
    blobs: tuple[Descriptor, ...] = ()  # config + layers (+ artifact blobs)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))


def parse_manifest(raw: bytes, content_type: str, where: str) -> Manifest:
    """Parse served bytes. Raises :class:`UnsupportedManifestError` with advice."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UnsupportedManifestError(f"{where}: the manifest is not valid JSON") from exc
    except RecursionError:
        raise UnsupportedManifestError(
            f"{where}: the manifest's JSON is nested too deeply to be a manifest"
        ) from None
    if not isinstance(doc, dict):
        raise UnsupportedManifestError(f"{where}: the manifest is not a JSON object")
    media_type = doc.get("mediaType") or content_type.split(";")[0].strip()
    if media_type in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise UnsupportedManifestError(
            f"{where}: Docker schema 1 manifest, which registries no longer accept. "
            "Pull and push it once with a current docker or skopeo to convert it, then retry."
        )
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    digest = Digest.of_bytes(raw)
    if media_type in INDEX_TYPES or "manifests" in doc:
        children = tuple(Descriptor.from_json(d, where) for d in _entries(doc, "manifests", where))
        return Manifest(raw, media_type, digest, children=children)
    blobs: list[Descriptor] = []
    if isinstance(doc.get("config"), dict):
        blobs.append(Descriptor.from_json(doc["config"], where))
    for key in ("layers", "blobs"):
        blobs.extend(Descriptor.from_json(d, where) for d in _entries(doc, key, where))
    if not blobs and "config" not in doc:
        raise UnsupportedManifestError(
            f"{where}: unknown manifest type '{media_type}' with neither layers nor manifests"
        )
    return Manifest(raw, media_type, digest, blobs=tuple(blobs))


def _entries(doc: dict[str, Any], key: str, where: str) -> list[Any]:
    """The list under ``key``, refused when it is not a list or absurdly long."""
    entries = doc.get(key) or []
    if not isinstance(entries, list):
        raise UnsupportedManifestError(f"{where}: the manifest's '{key}' is not a list")
    if len(entries) > MAX_ENTRIES:
        raise UnsupportedManifestError(
            f"{where}: the manifest lists {len(entries)} {key}; imageferry refuses more than "
            f"{MAX_ENTRIES} in one manifest"
        )
    return entries


def filter_index(index: Manifest, platforms: tuple[Platform, ...]) -> list[Descriptor]:
    """Children of ``index`` that match one of ``platforms`` (all when none given)."""
    if not platforms:
        return list(index.children)
    return [
        d
        for d in index.children
        if d.platform is not None and any(p.matches(d.platform) for p in platforms)
    ]


def build_index(index: Manifest, children: list[Descriptor]) -> Manifest:
    """A new index holding only ``children`` (used when --platform picks several)."""
    doc = json.loads(index.raw)
    keep = {str(c.digest) for c in children}
    doc["manifests"] = [m for m in doc["manifests"] if m.get("digest") in keep]
    raw = json.dumps(doc, indent=3).encode()
    return Manifest(raw, index.media_type, Digest.of_bytes(raw), children=tuple(children))
