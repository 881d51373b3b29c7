"""Which platform a single-platform image is for: its config's os and architecture.

An index lists its children's platforms; a plain image manifest does not, so
``--platform`` on such an image needs one small read of its config blob.
"""

from __future__ import annotations

import json

from imageferry.core.digest import verified_chunks
from imageferry.core.errors import InputError
from imageferry.core.manifest import Manifest, Platform
from imageferry.core.reference import Reference
from imageferry.core.store import BlobSource

IMAGE_CONFIG_TYPES = (
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
)
MAX_CONFIG = 4 * 1024 * 1024


def image_platform(source: BlobSource, repository: str, manifest: Manifest) -> Platform | None:
    """The os/architecture(/variant) of an image manifest's config; None when it names none.

    Reads the config blob from ``source`` (verified against its digest). Artifacts,
    whose config is no image config, have no platform.
    """
    config = manifest.blobs[0] if manifest.blobs else None
    if config is None or config.media_type not in IMAGE_CONFIG_TYPES:
        return None
    what = f"config {config.digest.short} of {repository}"
    if config.size > MAX_CONFIG:
        raise InputError(f"{what}: {config.size} bytes, larger than a config can be")
    raw = source.open_blob(repository, config)
    try:
        data = b"".join(verified_chunks(raw, config.digest, config.size, what))
    finally:
        close = getattr(raw, "close", None)
        if close:
            close()
    try:
        doc = json.loads(data)
        os_, arch = doc.get("os"), doc.get("architecture")
        variant = doc.get("variant")
    except (ValueError, AttributeError):
        return None
    if not isinstance(os_, str) or not isinstance(arch, str) or not os_ or not arch:
        return None
    return Platform(os_, arch, variant if isinstance(variant, str) and variant else None)


def check_platform(
    source: BlobSource, ref: Reference, manifest: Manifest, platforms: tuple[Platform, ...]
) -> None:
    """Raise InputError unless the single-platform image ``manifest`` is one of ``platforms``."""
    have = image_platform(source, ref.repository, manifest)
    if have is not None and any(p.matches(have) for p in platforms):
        return
    wanted = ", ".join(str(p) for p in platforms)
    has = str(have) if have else "none: its config names no os/architecture"
    raise InputError(
        f"{ref}: no manifest for platform {wanted} (it is a single-platform image; it has: "
        f"{has}). Leave out --platform for it, or copy it in a separate run"
    )
