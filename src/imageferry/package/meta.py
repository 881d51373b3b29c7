"""The meta file: the package's index, written last. Never holds credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml

from imageferry.core.digest import Digest
from imageferry.core.errors import ImageFerryError, PackageError
from imageferry.core.manifest import IMAGE_TYPES, INDEX_TYPES
from imageferry.core.model import Field, Model, ValidationError, field_validator
from imageferry.core.reference import Reference, check_repository, check_tag
from imageferry.package.safeyaml import load_yaml_file

FORMAT = "imageferry-package"
VERSION = 1
META_SUFFIX = "_meta.yaml"
MAX_IMAGES = 100_000
MAX_BLOBS = 1_000_000
MAX_DATAFILES = 10_000
MAX_MANIFEST = 8 * 1024 * 1024  # as from registries
MANIFEST_TYPES = (*INDEX_TYPES, *IMAGE_TYPES)


def _grammar(check: Any, value: str) -> str:
    """Run a reference-grammar check; a validator reports only ValueError as a validation error."""
    try:
        return str(check(value))
    except ImageFerryError as exc:
        raise ValueError(str(exc)) from None


def plain_file_name(name: str) -> bool:
    """A name that stays inside the meta file's folder on every OS: no folders, no drive."""
    return (
        bool(name)
        and name not in (".", "..")
        and not any(c in name for c in "/\\:\0")
        and name.strip() == name
    )


class _Model(Model):
    """Unknown keys refused; a field by its name or its alias (core/model.py, not pydantic)."""

    model_frozen = False


class ImageRecord(_Model):
    repository: str
    tag: str | None = None
    digest: str
    media_type: str = Field(alias="mediaType")
    source: str = ""  # the reference it was saved from

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return _grammar(check_repository, value)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return None if value is None else _grammar(check_tag, value)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _grammar(Digest.parse, value)

    def reference(self) -> Reference:
        """By tag, or by digest for an image saved without one (no host: packages have none)."""
        return Reference(
            "", self.repository, self.tag, None if self.tag else Digest.parse(self.digest)
        )


class BlobRecord(_Model):
    digest: str
    size: int = Field(ge=0)
    media_type: str = Field("", alias="mediaType")
    file: str | None = None  # data file holding it; None when in the base package
    offset: int | None = Field(None, ge=0)  # where its bytes start in the (uncompressed) tar
    frame: int | None = Field(None, ge=0)  # compressed files: where its zstd frame starts

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _grammar(Digest.parse, value)

    @property
    def in_base(self) -> bool:
        return self.file is None


class DataFileRecord(_Model):
    name: str
    size: int = Field(ge=0)
    sha256: str


class BaseRecord(_Model):
    file: str
    sha256: str


class PackageMeta(_Model):
    format: Literal["imageferry-package"] = "imageferry-package"
    version: int = VERSION
    tool: str
    created: str
    kind: Literal["full", "incremental"]
    base: BaseRecord | None = None
    source: str
    compression: Literal["none", "zstd"] = "none"
    images: list[ImageRecord]
    blobs: list[BlobRecord]
    datafiles: list[DataFileRecord]

    def blob_map(self) -> dict[str, BlobRecord]:
        return {b.digest: b for b in self.blobs}


def dump_meta(meta: PackageMeta) -> str:
    data = meta.model_dump(by_alias=True, exclude_none=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the same text, 15x faster
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=200)


def read_meta_file(path: Path) -> Any:
    """The YAML document of a meta file (either tool's format), or a PackageError.

    Size-capped, without anchors/aliases, nesting-limited: see :mod:`.safeyaml`.
    """
    return load_yaml_file(path, "package meta file")


def load_meta(path: Path) -> PackageMeta:
    """Read and validate a meta file; every problem is a :class:`PackageError`."""
    data = read_meta_file(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackageError(f"{path} is not an imageferry package meta file")
    if data.get("version") != VERSION:
        raise PackageError(
            f"{path} has package format version {data.get('version')}; this imageferry reads "
            f"version {VERSION}. Use a matching imageferry version."
        )
    try:
        meta = PackageMeta.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PackageError(
            f"{path}: {where}: {first['msg']} — the meta file was edited or damaged"
        ) from None
    _check_consistency(meta, path)
    return meta


def _check_consistency(meta: PackageMeta, path: Path) -> None:
    for what, count, limit in (
        ("images", len(meta.images), MAX_IMAGES),
        ("blobs", len(meta.blobs), MAX_BLOBS),
        ("datafiles", len(meta.datafiles), MAX_DATAFILES),
    ):
        if count > limit:
            raise PackageError(f"{path}: {what} lists {count} entries, more than {limit}")
    names = {d.name for d in meta.datafiles}
    for d in meta.datafiles:
        if not plain_file_name(d.name):
            raise PackageError(f"{path}: data file name '{d.name}' must be a plain file name")
    if meta.base is not None and not plain_file_name(meta.base.file):
        raise PackageError(f"{path}: base.file '{meta.base.file}' must be a plain file name")
    blobs = meta.blob_map()
    if len(blobs) != len(meta.blobs):
        raise PackageError(f"{path}: a blob is listed twice; the meta file was edited")
    for b in meta.blobs:
        if b.file is not None and (b.file not in names or b.offset is None):
            raise PackageError(f"{path}: blob {b.digest} points to unknown data file '{b.file}'")
    for image in meta.images:
        if image.digest not in blobs:
            raise PackageError(
                f"{path}: image {image.repository}:{image.tag} has no manifest in the package"
            )
    manifests = {i.digest for i in meta.images}
    for b in meta.blobs:
        if (b.digest in manifests or b.media_type in MANIFEST_TYPES) and b.size > MAX_MANIFEST:
            raise PackageError(
                f"{path}: manifest {b.digest} has {b.size} bytes, more than the 8 MiB a "
                "manifest may have; the package is refused"
            )
    if meta.kind == "incremental" and meta.base is None:
        raise PackageError(f"{path}: an incremental package must name its base")
