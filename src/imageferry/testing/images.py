"""Build real images (tar.gz layers, configs, manifests) and push them to a registry."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imageferry.core.digest import Digest
from imageferry.core.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    parse_manifest,
)
from imageferry.core.store import BlobSink

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> Digest:
        return Digest.of_bytes(self.data)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": str(self.digest), "size": len(self.data)}


@dataclass(frozen=True)
class Layer:
    blob: Blob
    diff_id: str


def make_layer(seed: str, size: int, media_type: str = DOCKER_LAYER, level: int = 1) -> Layer:
    """A tar.gz with one file of ``size`` pseudo-random bytes (deterministic per seed)."""
    rng = random.Random(seed)
    block = 1 << 20
    payload = b"".join(rng.randbytes(min(block, size - i)) for i in range(0, size, block))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"data/{seed.replace('/', '_')}.bin")
        info.size = len(payload)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, compresslevel=level, mtime=0)
    return Layer(Blob(gz, media_type), "sha256:" + hashlib.sha256(tar_bytes).hexdigest())


def make_image(
    layers: list[Layer],
    *,
    oci: bool = False,
    arch: str = "amd64",
    variant: str | None = None,
    label: str = "",
) -> tuple[Blob, list[Blob]]:
    """(manifest blob, [config, layers...]) for a runnable-looking linux image."""
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Labels": {"imageferry.sample": label}},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }
    if variant:
        config["variant"] = variant
    config_blob = Blob(
        json.dumps(config, sort_keys=True).encode(), OCI_CONFIG if oci else DOCKER_CONFIG
    )
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }
    manifest = Blob(json.dumps(doc, indent=3).encode(), OCI_MANIFEST if oci else DOCKER_MANIFEST)
    return manifest, [config_blob, *(layer.blob for layer in layers)]


def make_index(children: list[tuple[Blob, str, str | None]], oci: bool = True) -> Blob:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX if oci else DOCKER_LIST,
        "manifests": [
            {
                **m.descriptor(),
                "platform": {"os": "linux", "architecture": arch, **({"variant": v} if v else {})},
            }
            for m, arch, v in children
        ],
    }
    return Blob(json.dumps(doc, indent=3).encode(), OCI_INDEX if oci else DOCKER_LIST)


def make_artifact(
    payload: bytes,
    artifact_type: str = "application/vnd.example.sbom+json",
    layer_type: str = "application/json",
    **extra: Any,
) -> tuple[Blob, list[Blob]]:
    """An OCI 1.1 artifact manifest (empty config, one layer); ``extra``: more top-level
    keys (``subject``, ``annotations``)."""
    empty = Blob(b"{}", OCI_EMPTY)
    layer = Blob(payload, layer_type)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.descriptor(),
        "layers": [layer.descriptor()],
        **extra,
    }
    return Blob(json.dumps(doc).encode(), OCI_MANIFEST), [empty, layer]


def push_image(
    sink: BlobSink,
    repository: str,
    reference: str,
    manifest: Blob,
    blobs: list[Blob],
    children: Sequence[tuple[Blob, list[Blob]]] = (),
) -> Manifest:
    """Push blobs, child manifests, then ``manifest`` under ``reference``."""
    for child, child_blobs in children:
        push_image(sink, repository, str(child.digest), child, child_blobs)
    for blob in blobs:
        desc = Descriptor(blob.media_type, blob.digest, len(blob.data))
        if not sink.has_blob(repository, desc):
            sink.put_blob(repository, desc, [blob.data])
    parsed = parse_manifest(manifest.data, manifest.media_type, repository)
    sink.put_manifest(repository, reference, parsed)
    return parsed


@dataclass(frozen=True)
class Sample:
    repository: str
    tag: str
    digest: str
    media_type: str

    @property
    def line(self) -> str:
        return f"{self.repository}:{self.tag}"


def push_sample_set(sink: BlobSink, layer_size: int = 64 * 1024, seed: str = "s") -> list[Sample]:
    """A dozen images: Docker and OCI, shared base layers, a multi-platform index, an artifact."""
    base = make_layer(f"{seed}-base", layer_size)
    base_oci = Layer(Blob(base.blob.data, OCI_LAYER), base.diff_id)
    out: list[Sample] = []

    def record(repo: str, tag: str, m: Manifest) -> None:
        out.append(Sample(repo, tag, str(m.digest), m.media_type))

    for i in range(4):
        app = make_layer(f"{seed}-app-{i}", layer_size // 2 + i)
        manifest, blobs = make_image([base, app], label=f"app{i}")
        record(f"demo/app{i}", "1.0", push_image(sink, f"demo/app{i}", "1.0", manifest, blobs))
    for i in range(3):
        extra = make_layer(f"{seed}-svc-{i}", layer_size // 4, OCI_LAYER)
        manifest, blobs = make_image([base_oci, extra], oci=True, label=f"svc{i}")
        record(
            "team/services", f"v{i}", push_image(sink, "team/services", f"v{i}", manifest, blobs)
        )
    for i in range(2):
        tool = make_layer(f"{seed}-tool-{i}", 1024 + i)
        manifest, blobs = make_image([tool], label=f"tool{i}")
        record(f"tools/t{i}", "latest", push_image(sink, f"tools/t{i}", "latest", manifest, blobs))
    children = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        layer = make_layer(f"{seed}-multi-{arch}", layer_size // 3, OCI_LAYER)
        manifest, blobs = make_image([base_oci, layer], oci=True, arch=arch, variant=variant)
        children.append((manifest, blobs, arch, variant))
    index = make_index([(m, a, v) for m, _, a, v in children])
    record(
        "multi/arch",
        "1",
        push_image(sink, "multi/arch", "1", index, [], [(m, b) for m, b, _, _ in children]),
    )
    dl_children = []
    for arch in ("amd64", "s390x"):
        layer = make_layer(f"{seed}-dl-{arch}", 2048)
        manifest, blobs = make_image([layer], arch=arch)
        dl_children.append((manifest, blobs, arch))
    dlist = make_index([(m, a, None) for m, _, a in dl_children], oci=False)
    record(
        "multi/dockerlist",
        "2",
        push_image(sink, "multi/dockerlist", "2", dlist, [], [(m, b) for m, b, _ in dl_children]),
    )
    manifest, blobs = make_artifact(json.dumps({"sbom": seed}).encode())
    record("artifacts/sbom", "1", push_image(sink, "artifacts/sbom", "1", manifest, blobs))
    return out
