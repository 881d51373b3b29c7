"""image-transmit packages as the real tool writes them (issue 13): sniffed, streamed, checked."""

from __future__ import annotations

import gzip
import json
import os
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml

from imageferry.core.digest import Digest
from imageferry.core.errors import PackageError
from imageferry.core.manifest import Descriptor
from imageferry.engine.locations import open_package_reader
from imageferry.package import container
from imageferry.package.container import StreamCursors, sniff
from support.packages import compress, legacy_entries, tar_of, write_image_transmit
from support.verify import assert_image_copied


def _single_images(source):
    return [s for s in source.samples if "index" not in s.media_type and "list" not in s.media_type]


def _catalog(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/_catalog", timeout=10) as resp:
        return json.loads(resp.read())["repositories"]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _datafiles(meta: Path) -> list[Path]:
    return [meta.parent / n for n in yaml.safe_load(meta.read_text())["datafiles"]]


def _resize(meta: Path) -> None:
    """Record the data files' current sizes in the meta file (a damage the size check misses)."""
    doc = yaml.safe_load(meta.read_text())
    doc["datafiles"] = {n: (meta.parent / n).stat().st_size for n in doc["datafiles"]}
    meta.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(
    "says,actual",
    [
        ("gzip", "tar"),
        ("zstd", "tar"),
        ("xz", "tar"),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("xz", "xz"),
    ],
)
def test_image_transmit_package_loads_by_its_bytes(
    says, actual, source, new_registry, cli, tmp_path
):
    samples = _single_images(source)
    meta = write_image_transmit(tmp_path / "pkg", source, samples, says=says, actual=actual)
    before = _files(meta.parent)
    reader = open_package_reader(meta)
    try:
        reader.verify()
        assert set(reader.containers.values()) == {actual}
        assert bool(reader.warnings) == (says != actual)
    finally:
        reader.close()
    check = cli("check", str(meta))
    assert check.returncode == 0, check.output
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url)
    assert result.returncode == 0, result.output
    for s in samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)
    assert _files(meta.parent) == before  # no unpacked copy, nothing left behind


def test_compressed_incremental_on_a_plain_full(source, new_registry, cli, tmp_path):
    samples = [s for s in _single_images(source) if s.repository.startswith("demo/app")]
    full = write_image_transmit(tmp_path / "full", source, samples[:1], says="gzip", actual="tar")
    base_manifest, _, _ = legacy_entries(source, samples[:1])
    layer = json.loads(next(iter(base_manifest.values())))["layers"][0]["digest"].split(":")[1]
    inc = write_image_transmit(
        tmp_path / "inc",
        source,
        samples[1:],
        says="gzip",
        actual="zstd",
        skip={layer},
        stem="img_incr_202106130839",
    )
    target = new_registry()
    alone = cli("load", str(inc), "--to", target.url)
    assert alone.returncode == 2 and "base_meta.yaml" in alone.stderr, alone.output
    before = _files(inc.parent)
    for meta in (full, inc):
        done = cli("load", str(meta), "--to", target.url)
        assert done.returncode == 0, done.output
    for s in samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)
    assert _files(inc.parent) == before


def _truncate(meta: Path) -> str:
    data = _datafiles(meta)[0]
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) * 3 // 5])
    _resize(meta)
    return data.name


def _wrong_entry(meta: Path, source, samples, actual: str, *, grow: bool) -> str:
    """Rewrite data file 0: one entry renamed to a digest the meta lacks, or one byte longer."""
    _, _, entries = legacy_entries(source, samples)
    data = _datafiles(meta)[0]
    names = sorted(entries)[0::2]
    changed = []
    for i, hex_ in enumerate(names):
        name, blob = entries[hex_]
        if i == 0:
            name, blob = (name, blob + b"x") if grow else ("f" * 64 + ".tar.gz", blob)
        changed.append((name, blob))
    data.write_bytes(compress(tar_of(changed), actual))
    _resize(meta)
    return data.name


@pytest.mark.parametrize("actual", ["tar", "gzip", "zstd", "xz"])
@pytest.mark.parametrize("damage", ["truncated", "renamed", "longer"])
def test_damaged_image_transmit_package_is_refused(
    damage, actual, source, new_registry, cli, tmp_path
):
    samples = _single_images(source)
    meta = write_image_transmit(tmp_path / "pkg", source, samples, says="gzip", actual=actual)
    if damage == "truncated":
        name = _truncate(meta)
    else:
        name = _wrong_entry(meta, source, samples, actual, grow=damage == "longer")
    before = _files(meta.parent)
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url)
    assert result.returncode == 2, result.output
    assert name in result.stderr and "internal error" not in result.output
    assert _catalog(target.url) == []  # nothing pushed
    assert _files(meta.parent) == before


@pytest.mark.parametrize(
    "head,kind",
    [
        (gzip.compress(b"x"), "gzip"),
        (compress(b"x", "zstd"), "zstd"),
        (compress(b"x", "xz"), "xz"),
        (b"\x04\x22\x4d\x18" + b"\0" * 20, "lz4"),
        (tar_of([("a", b"1")]), "tar"),
    ],
)
def test_sniff_by_magic_bytes(head, kind, tmp_path):
    path = tmp_path / "data.tar"
    path.write_bytes(head)
    assert sniff(path) == kind


def test_sniff_refuses_what_is_no_package_data(tmp_path):
    path = tmp_path / "data.tar"
    path.write_bytes(b"<html>not a tar</html>" * 40)
    with pytest.raises(PackageError, match="data.tar is neither a tar"):
        sniff(path)


def test_lz4_image_transmit_package_is_refused_with_a_message(source, cli, tmp_path):
    meta = write_image_transmit(
        tmp_path / "pkg", source, _single_images(source)[:1], says="lz4", actual="tar"
    )
    data = _datafiles(meta)[0]
    data.write_bytes(b"\x04\x22\x4d\x18" + data.read_bytes())
    _resize(meta)
    result = cli("check", str(meta))
    assert result.returncode == 2 and "lz4" in result.stderr, result.output


def test_stream_cursors_serve_any_order_from_threads(tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "data.gz"
    path.write_bytes(gzip.compress(payload, compresslevel=1))
    cursors = StreamCursors(path, container.GZIP)
    spans = [(o, 300_000) for o in range(0, len(payload) - 300_000, 250_000)]
    results: dict[int, bytes] = {}

    def read(offset: int, size: int) -> None:
        results[offset] = b"".join(cursors.read(offset, size))

    threads = [threading.Thread(target=read, args=span) for span in reversed(spans)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for offset, size in spans:
        assert results[offset] == payload[offset : offset + size]
    assert len(cursors._idle) <= container.IDLE_PER_FILE
    cursors.close()
    assert cursors._idle == []


@pytest.mark.parametrize("actual", ["tar", "gzip"])
def test_data_file_vanishing_after_the_check_is_a_package_error(actual, source, tmp_path):
    samples = _single_images(source)[:1]
    meta = write_image_transmit(
        tmp_path / "pkg", source, samples, says="gzip", actual=actual, files=1
    )
    _, _, entries = legacy_entries(source, samples)
    hex_, (_, blob) = next(iter(entries.items()))
    reader = open_package_reader(meta)
    try:
        reader.verify()
        _datafiles(meta)[0].unlink()
        desc = Descriptor("", Digest("sha256", hex_), len(blob))
        with pytest.raises(PackageError, match=_datafiles(meta)[0].name):
            b"".join(reader.open_blob(samples[0].repository, desc))
    finally:
        reader.close()


def test_native_zstd_package_with_an_edited_meta_loads(source, new_registry, cli, tmp_path):
    sample = _single_images(source)[0]
    saved = cli("save", sample.line, "--from", source.url, "-o", "out", "--compress", "zstd")
    assert saved.returncode == 0, saved.output
    meta = next((tmp_path / "out").glob("*/*_meta.yaml"))
    doc = yaml.safe_load(meta.read_text())
    doc["compression"] = "none"
    for blob in doc["blobs"]:
        blob.pop("frame", None)
    meta.write_text(yaml.safe_dump(doc, sort_keys=False))
    before = _files(meta.parent)
    reader = open_package_reader(meta)
    try:
        reader.verify()
        assert set(reader.containers.values()) == {"zstd"} and reader.warnings
    finally:
        reader.close()
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url)
    assert result.returncode == 0, result.output
    assert_image_copied(source.url, sample.repository, sample.tag, target.url, sample.repository)
    assert _files(meta.parent) == before
