"""Signatures, SBOMs and attestations written the way cosign, ORAS and notation write them
on a registry without the referrers API: cosign's ``sha256-<hex>.sig`` tag, and artifacts
with a ``subject`` listed in the fallback index tag ``sha256-<hex>``."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

from imageferry.core.manifest import OCI_INDEX, OCI_MANIFEST, Manifest
from imageferry.core.store import BlobSink
from imageferry.testing.images import OCI_CONFIG, Blob, make_artifact, push_image

SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SBOM_TYPE = "application/spdx+json"
ATTESTATION_TYPE = "application/vnd.in-toto+json"
NOTATION_TYPE = "application/vnd.cncf.notary.signature"


@dataclass(frozen=True)
class Pushed:
    """A referrer as pushed: its manifest, and the tag it is under (cosign) if any."""

    manifest: Manifest
    tag: str | None = None

    @property
    def digest(self) -> str:
        return str(self.manifest.digest)


def tag_of(digest: str) -> str:
    return digest.replace(":", "-")


def cosign_signature(sink: BlobSink, repo: str, subject: Manifest, identity: str) -> Pushed:
    """A cosign signature: simplesigning layer with the signature annotation, under
    tag ``sha256-<hex>.sig``."""
    payload = json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": str(subject.digest)},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()
    layer = Blob(payload, SIMPLESIGNING)
    config = Blob(
        json.dumps(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [str(layer.digest)]},
            }
        ).encode(),
        OCI_CONFIG,
    )
    signature = base64.b64encode(hashlib.sha256(payload).digest()).decode()
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [
            {
                **layer.descriptor(),
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            }
        ],
    }
    tag = tag_of(str(subject.digest)) + ".sig"
    manifest = Blob(json.dumps(doc).encode(), OCI_MANIFEST)
    return Pushed(push_image(sink, repo, tag, manifest, [config, layer]), tag)


def attach(
    sink: BlobSink, repo: str, subject: Manifest, artifact_type: str, payload: bytes
) -> Pushed:
    """An OCI 1.1 artifact whose ``subject`` is ``subject``, pushed by digest and listed in
    the fallback index (merged with what is there), as ORAS / notation do."""
    subject_desc = {
        "mediaType": subject.media_type,
        "digest": str(subject.digest),
        "size": subject.size,
    }
    blob, blobs = make_artifact(
        payload,
        artifact_type,
        artifact_type,
        subject=subject_desc,
        annotations={"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
    )
    pushed = push_image(sink, repo, str(blob.digest), blob, blobs)
    add_to_fallback(sink, repo, subject, pushed, artifact_type)
    return Pushed(pushed)


def add_to_fallback(
    sink: BlobSink, repo: str, subject: Manifest, referrer: Manifest, artifact_type: str
) -> None:
    tag = tag_of(str(subject.digest))
    entries = []
    try:
        current = sink.get_manifest(repo, tag)  # type: ignore[attr-defined]
        entries = json.loads(current.raw)["manifests"]
    except Exception:  # noqa: BLE001 - no index yet
        entries = []
    entries.append(
        {
            "mediaType": referrer.media_type,
            "digest": str(referrer.digest),
            "size": referrer.size,
            "artifactType": artifact_type,
        }
    )
    index = Blob(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode(),
        OCI_INDEX,
    )
    push_image(sink, repo, tag, index, [])
