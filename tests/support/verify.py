"""Independent checks of a registry's content, with plain urllib (not imageferry's client)."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def get_manifest(base: str, repo: str, ref: str) -> bytes | None:
    req = urllib.request.Request(f"{base}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def blob_exists(base: str, repo: str, digest: str) -> bool:
    req = urllib.request.Request(f"{base}/v2/{repo}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise


def assert_image_copied(
    src: str, src_repo: str, ref: str, dst: str, dst_repo: str, dst_ref: str | None = None
) -> str:
    """Manifests byte-identical (recursively) and every blob present on the target."""
    want = get_manifest(src, src_repo, ref)
    assert want is not None, f"{src_repo}:{ref} missing in the source"
    got = get_manifest(dst, dst_repo, dst_ref or ref)
    assert got == want, f"{dst_repo}:{dst_ref or ref} differs from the source"
    doc = json.loads(want)
    for child in doc.get("manifests", []):
        assert_image_copied(src, src_repo, child["digest"], dst, dst_repo)
    for blob in [doc.get("config"), *doc.get("layers", [])]:
        if blob:
            assert blob_exists(dst, dst_repo, blob["digest"]), f"{blob['digest']} missing"
    return "sha256:" + hashlib.sha256(want).hexdigest()
