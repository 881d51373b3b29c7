"""Packages built by hand in tests: native ones with chosen blobs, image-transmit ones as it writes.

Real files, real formats: native packages go through the real tar header and
meta writer functions; image-transmit packages are plain tar files (whatever
``compressor`` the meta says) or a tar inside one gzip / zstd / xz stream.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
import zstandard

from imageferry.package.meta import (
    BlobRecord,
    DataFileRecord,
    ImageRecord,
    PackageMeta,
    dump_meta,
)
from imageferry.package.tarfmt import END_OF_ARCHIVE, blob_name, header, padding
from imageferry.testing.images import Blob
from support.verify import ACCEPT

SKIP = "https://last.img/skip/it:"


def build_native(
    folder: Path,
    images: list[tuple[str, str, Blob]],
    blobs: list[Blob],
    edit: Callable[[dict], None] | None = None,
) -> Path:
    """A one-data-file imageferry package of ``images`` (repo, tag, manifest) and ``blobs``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "pkg_full_202601010000_0.tar"
    records, seen = [], set()
    with data.open("wb") as f:
        for blob in [*(m for _, _, m in images), *blobs]:
            digest = str(blob.digest)
            if digest in seen:
                continue
            seen.add(digest)
            f.write(header(blob_name(digest), len(blob.data), 0))
            records.append(
                BlobRecord(
                    digest=digest,
                    size=len(blob.data),
                    mediaType=blob.media_type,
                    file=data.name,
                    offset=f.tell(),
                )
            )
            f.write(blob.data + b"\0" * padding(len(blob.data)))
        f.write(END_OF_ARCHIVE)
    meta = PackageMeta(
        tool="test",
        created="2026-01-01T00:00:00+00:00",
        kind="full",
        source="example.com",
        images=[
            ImageRecord(repository=r, tag=t, digest=str(m.digest), mediaType=m.media_type)
            for r, t, m in images
        ],
        blobs=records,
        datafiles=[
            DataFileRecord(
                name=data.name,
                size=data.stat().st_size,
                sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
            )
        ],
    )
    doc = yaml.safe_load(dump_meta(meta))
    if edit is not None:
        edit(doc)
    path = folder / "pkg_full_202601010000_meta.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _get(url: str, accept: str | None = None) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def _suffix(desc: dict) -> str:  # as image-transmit names its entries
    if desc["mediaType"].endswith("tar.gzip") and desc["size"] > 32:
        return ".tar.gz"
    if desc["mediaType"].endswith("tar"):
        return ".tar"
    return ".json" if desc["mediaType"].endswith("json") else ".raw"


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if how == "xz":
        return lzma.compress(data)
    return data


def legacy_entries(
    source, samples, skip: set[str] = frozenset(), base: str = "base_meta.yaml"
) -> tuple[dict, dict, dict]:
    """(manifests, blobs, entries) of ``samples`` as image-transmit records them."""
    manifests, blobs, entries = {}, {}, {}
    for s in samples:
        url = f"{source.server.host}/{s.repository}:{s.tag}"
        raw = _get(f"{source.url}/v2/{s.repository}/manifests/{s.tag}", ACCEPT)
        manifests[url] = raw.decode()
        doc = json.loads(raw)
        for desc in [doc["config"], *doc["layers"]]:
            hex_ = desc["digest"].split(":")[1]
            if hex_ in skip:
                blobs[hex_] = [f"{SKIP}{base}"]
                continue
            blobs.setdefault(hex_, []).append(url)
            if hex_ not in entries:
                blob = _get(f"{source.url}/v2/{s.repository}/blobs/{desc['digest']}")
                entries[hex_] = (hex_ + _suffix(desc), blob)
    return manifests, blobs, entries


def tar_of(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_image_transmit(
    folder: Path,
    source,
    samples,
    *,
    says: str,
    actual: str,
    skip: set[str] = frozenset(),
    stem: str = "img_full_202106122344",
    files: int = 2,
    base: str = "base_meta.yaml",
    suffix: str = "tar",
) -> Path:
    """An image-transmit package: meta says ``compressor: says``, the bytes are ``actual``;
    with ``skip``, an incremental one leaving those blobs to the package ``base``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifests, blobs, entries = legacy_entries(source, samples, skip, base)
    if skip:
        manifests[f"{SKIP}{base}"] = ""
    names = sorted(entries)
    datafiles = {}
    for i in range(files):
        data = compress(tar_of([entries[h] for h in names[i::files]]), actual)
        name = f"{stem}_{i}.{suffix}"
        (folder / name).write_bytes(data)
        datafiles[name] = len(data)
    meta = {
        "datafiles": datafiles,
        "compressor": says,
        "blobs": blobs,
        "manifests": manifests,
        "blobdoing": {},
    }
    path = folder / f"{stem}_meta.yaml"
    path.write_text(yaml.safe_dump(meta, allow_unicode=True))
    return path
