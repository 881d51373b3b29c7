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
VERSION = 1  # what a package needs unless it uses a newer field (see required_version)
# Version 2 adds optional fields: blobs split across data files (BlobRecord.parts) and
# referrers. A package that uses neither stays version 1, readable by older imageferry.
SPLIT_VERSION = VERSION_WITH_REFERRERS = 2
VERSIONS = READABLE_VERSIONS = (1, 2)  # what this imageferry reads
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


class PartRecord(_Model):
    """One byte range of a split blob: its own tar entry ``<hex>.partNNNN`` in ``file``."""

    file: str
    offset: int = Field(ge=0)  # where the part's bytes start in the (uncompressed) tar
    size: int = Field(gt=0)
    frame: int | None = Field(None, ge=0)


class BlobRecord(_Model):
    digest: str
    size: int = Field(ge=0)
    media_type: str = Field("", alias="mediaType")
    file: str | None = None  # data file holding it; None when in the base package or split
    offset: int | None = Field(None, ge=0)  # where its bytes start in the (uncompressed) tar
    frame: int | None = Field(None, ge=0)  # compressed files: where its zstd frame starts
    parts: list[PartRecord] | None = None  # a blob split across data files (version 2)

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _grammar(Digest.parse, value)

    @property
    def in_base(self) -> bool:
        return self.file is None and not self.parts

    def pieces(self) -> list[PartRecord]:
        """Where the blob's bytes are, in order: its parts, or its one entry."""
        if self.parts:
            return self.parts
        if self.file is None or self.offset is None:
            return []
        return [PartRecord(file=self.file, offset=self.offset, size=self.size, frame=self.frame)]


class ReferrerRecord(_Model):
    """A signature, SBOM or attestation that travels with an image (format version 2)."""

    repository: str
    image: str  # digest of the image (top manifest) it travels with
    subject: str  # digest of the manifest it refers to (the image, a child or a referrer)
    digest: str  # the referrer's manifest
    media_type: str = Field(alias="mediaType")
    artifact_type: str = Field("", alias="artifactType")
    tag: str | None = None  # cosign's sha256-<hex>.sig/.att/.sbom tag, kept as a tag

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return _grammar(check_repository, value)

    @field_validator("image", "subject", "digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        return _grammar(Digest.parse, value)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        return None if value is None else _grammar(check_tag, value)


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
    referrers: list[ReferrerRecord] = Field(default_factory=list)

    def blob_map(self) -> dict[str, BlobRecord]:
        return {b.digest: b for b in self.blobs}


def required_version(blobs: list[BlobRecord]) -> int:
    """The lowest format version that holds these blobs: older imageferry reads what it can.

    A package with no split blob stays version 1, readable by every imageferry.
    """
    return SPLIT_VERSION if any(b.parts for b in blobs) else VERSION


def dump_meta(meta: PackageMeta) -> str:
    """The meta file's text; version 2 with a ``referrers:`` list only when it has referrers,
    so a package without them stays readable by imageferry versions that read version 1."""
    data = meta.model_dump(by_alias=True, exclude_none=True)
    if meta.referrers:
        data["version"] = max(meta.version, VERSION_WITH_REFERRERS)
    else:
        data.pop("referrers", None)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: the same text, 15x faster
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=200)


def read_meta_file(path: Path) -> Any:
    """The YAML document of a meta file (either tool's format), or a PackageError.

    Size-capped, without anchors/aliases, nesting-limited: see :mod:`.safeyaml`.
    """
    return load_yaml_file(path, "package meta file")


def load_meta(path: Path) -> PackageMeta:
    """Read and validate a meta file; every problem is a :class:`PackageError`."""
    return meta_from_data(read_meta_file(path), path)


def meta_from_data(data: Any, path: Path) -> PackageMeta:
    """Validate the document :func:`read_meta_file` read from ``path``."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PackageError(f"{path} is not an imageferry package meta file")
    if data.get("version") not in VERSIONS:
        known = " and ".join(str(v) for v in VERSIONS)
        raise PackageError(
            f"{path} has package format version {data.get('version')}; this imageferry reads "
            f"versions {known}. Use a matching imageferry version."
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
        if b.parts is not None:
            _check_parts(b, names, path)
    if meta.version < required_version(meta.blobs):
        raise PackageError(
            f"{path}: version {meta.version} meta file lists split blobs (parts), which need "
            f"version {SPLIT_VERSION}; the meta file was edited"
        )
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
    _check_referrers(meta, path)
    if meta.kind == "incremental" and meta.base is None:
        raise PackageError(f"{path}: an incremental package must name its base")


def _check_referrers(meta: PackageMeta, path: Path) -> None:
    """Each referrer is in the package (or its base), travels with a listed image, and a
    tag it keeps is cosign's tag of its subject: never any other tag of the repository."""
    if len(meta.referrers) > MAX_BLOBS:
        raise PackageError(f"{path}: referrers lists {len(meta.referrers)} entries")
    if meta.referrers and meta.version < VERSION_WITH_REFERRERS:
        raise PackageError(f"{path}: version {meta.version} meta files list no referrers")
    blobs = meta.blob_map()
    images = {(i.repository, i.digest) for i in meta.images}
    for r in meta.referrers:
        what = f"{path}: referrer {r.digest} of {r.repository}"
        if r.digest not in blobs:
            raise PackageError(f"{what} has no manifest in the package")
        if (r.repository, r.image) not in images:
            raise PackageError(f"{what} belongs to no image the package lists")
        subject = Digest.parse(r.subject)
        cosign = [f"{subject.algorithm}-{subject.hex}{s}" for s in (".sig", ".att", ".sbom")]
        if r.tag is not None and r.tag not in cosign:
            raise PackageError(
                f"{what}: tag '{r.tag}' is not a cosign tag of its subject "
                f"({cosign[0]}, .att or .sbom); the meta file was edited"
            )


def _check_parts(blob: BlobRecord, names: set[str], path: Path) -> None:
    where = f"{path}: blob {blob.digest}"
    if blob.file is not None or blob.offset is not None or blob.frame is not None:
        raise PackageError(f"{where} has both parts and a file; the meta file was edited")
    if len(blob.parts or []) < 2:
        raise PackageError(f"{where} is split into fewer than 2 parts; the meta file was edited")
    for part in blob.parts or []:
        if part.file not in names:
            raise PackageError(f"{where}: a part points to unknown data file '{part.file}'")
    total = sum(p.size for p in blob.parts or [])
    if total != blob.size:
        raise PackageError(
            f"{where}: its parts hold {total} bytes, not its size {blob.size}; the meta file "
            "was edited"
        )
