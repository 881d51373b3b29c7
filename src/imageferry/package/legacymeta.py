"""The meta file of an image-transmit package, checked field by field before anything uses it.

Keys: ``datafiles`` (name → size), ``compressor``, ``blobs`` (hex → images
using it, or ``https://last.img/skip/it:<base meta>`` for blobs left to a base
package) and ``manifests`` (image URL → manifest JSON). Every name that later
becomes a path must be a plain file name; every image must pass the reference
grammar; every manifest is capped and parsed here, so a damaged meta file is
refused with a :class:`PackageError` naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imageferry.core.errors import ImageFerryError, PackageError
from imageferry.core.manifest import Manifest, parse_manifest
from imageferry.core.reference import Reference
from imageferry.package.meta import (
    MAX_BLOBS,
    MAX_DATAFILES,
    MAX_IMAGES,
    MAX_MANIFEST,
    plain_file_name,
)

SKIP_PREFIX = "https://last.img/skip/it:"
_HEX = re.compile(r"^[a-f0-9]{64}$")


@dataclass
class LegacyImage:
    """One image of an image-transmit package."""

    url: str
    reference: Reference
    manifest: Manifest


@dataclass
class LegacyMeta:
    """An image-transmit meta file, checked."""

    compressor: str
    datafiles: dict[str, int]
    carried: dict[str, list[str]]  # hex → images, for blobs in this package's data files
    in_base: set[str]  # hex of blobs left to the base package
    images: list[LegacyImage] = field(default_factory=list)
    base: str | None = None


def is_legacy_meta(data: Any) -> bool:
    return isinstance(data, dict) and "manifests" in data and "datafiles" in data


def parse_legacy_meta(path: Path, data: dict) -> LegacyMeta:
    """Check the document of an image-transmit meta file; PackageError naming the bad key."""
    where = path.name
    compressor = data.get("compressor") or "tar"
    if not isinstance(compressor, str):
        raise PackageError(f"{where}: compressor: expected a name, got {_shown(compressor)}")
    meta = LegacyMeta(compressor, _datafiles(where, data), {}, set())
    for hex_, refs in _mapping(where, data, "blobs", MAX_BLOBS).items():
        if not isinstance(hex_, str) or not _HEX.match(hex_):
            raise PackageError(f"{where}: blobs: '{_shown(hex_)}' is not a sha256 hex digest")
        if not isinstance(refs, list | None):
            raise PackageError(f"{where}: blobs.{hex_}: expected a list of images")
        texts = [str(r) for r in refs or []]
        skips = [t.removeprefix(SKIP_PREFIX) for t in texts if t.startswith(SKIP_PREFIX)]
        if skips:
            meta.in_base.add(hex_)
            meta.base = meta.base or _base_name(where, skips[0])
        else:
            meta.carried[hex_] = texts
    for url, text in _mapping(where, data, "manifests", MAX_IMAGES).items():
        if isinstance(url, str) and url.startswith(SKIP_PREFIX):
            meta.base = _base_name(where, url.removeprefix(SKIP_PREFIX))
            continue
        meta.images.append(_image(where, url, text))
    return meta


def _datafiles(where: str, data: dict) -> dict[str, int]:
    sizes = {}
    for name, size in _mapping(where, data, "datafiles", MAX_DATAFILES).items():
        if not isinstance(name, str) or not plain_file_name(name):
            raise PackageError(
                f"{where}: datafiles: '{_shown(name)}' must be a plain file name in the meta "
                "file's folder"
            )
        if size is None:
            size = 0
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise PackageError(f"{where}: datafiles.{name}: size {_shown(size)} is not a number")
        sizes[name] = size
    return sizes


def _mapping(where: str, data: dict, key: str, limit: int) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PackageError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
    if len(value) > limit:
        raise PackageError(f"{where}: {key} lists {len(value)} entries, more than {limit}")
    return value


def _base_name(where: str, name: str) -> str:
    if not plain_file_name(name):
        raise PackageError(f"{where}: base package '{_shown(name)}' must be a plain file name")
    return name


def _image(where: str, url: Any, text: Any) -> LegacyImage:
    if not isinstance(url, str) or not isinstance(text, str):
        raise PackageError(f"{where}: manifests: '{_shown(url)}' must map to manifest text")
    try:
        ref = Reference.parse(url.split("://", 1)[-1])
    except ImageFerryError as exc:
        raise PackageError(f"{where}: manifests: image '{_shown(url)}' is refused: {exc}") from None
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_MANIFEST:
        raise PackageError(f"{where}: manifests.{url}: larger than 8 MiB, refused")
    try:
        manifest = parse_manifest(raw, "", f"{where}: manifests.{url}")
    except ImageFerryError as exc:
        raise PackageError(str(exc)) from None
    except RecursionError:
        raise PackageError(f"{where}: manifests.{url}: nested too deeply, refused") from None
    return LegacyImage(url, ref, manifest)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "…"
