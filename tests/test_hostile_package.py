"""Hostile packages (issue 17): each test is an exploit that worked before, now refused cleanly."""

from __future__ import annotations

import json
import os
import tarfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from imageferry.core.errors import PackageError
from imageferry.core.manifest import OCI_MANIFEST
from imageferry.package import safeyaml
from imageferry.package.journal import Journal
from imageferry.package.layout import Item
from imageferry.package.meta import read_meta_file
from imageferry.package.tarfmt import END_OF_ARCHIVE, header, padding, parse_header
from imageferry.package.writer import PackageWriter
from imageferry.testing.images import Blob, make_image, make_layer
from support.packages import build_native, compress, legacy_entries, tar_of, write_image_transmit

GIB = 1024**3


def _catalog(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/_catalog", timeout=10) as resp:
        return json.loads(resp.read())["repositories"]


def _single(source):
    return [s for s in source.samples if s.repository.startswith("demo/app")][:2]


def _refused(result, *words: str) -> None:
    assert result.returncode == 2, result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


def _small_image():
    manifest, blobs = make_image([make_layer("hostile", 2048)], label="hostile")
    return manifest, blobs


# -- item 1: image-transmit data file names and the unpack link --------------------------


@pytest.mark.parametrize("bad", ["../outside.tar", "ABSOLUTE"])
def test_image_transmit_data_file_outside_its_folder_is_refused(bad, source, cli, tmp_path):
    meta = write_image_transmit(tmp_path / "pkg", source, _single(source), says="tar", actual="tar")
    doc = yaml.safe_load(meta.read_text())
    (name, size), *rest = doc["datafiles"].items()
    outside = tmp_path / "outside.tar"
    os.replace(meta.parent / name, outside)
    bad = str(outside) if bad == "ABSOLUTE" else bad
    doc["datafiles"] = {bad: size, **dict(rest)}
    meta.write_text(yaml.safe_dump(doc))
    _refused(cli("check", str(meta)), "plain file name", meta.name)


def test_image_transmit_check_writes_nothing_through_a_link(source, cli, tmp_path):
    meta = write_image_transmit(
        tmp_path / "pkg", source, _single(source), says="gzip", actual="gzip"
    )
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in yaml.safe_load(meta.read_text())["datafiles"]:
        (meta.parent / f"{name}.imageferry-unpacked.tar").symlink_to(victim)
    before = sorted(p.name for p in meta.parent.iterdir())
    result = cli("check", str(meta))
    assert result.returncode == 0, result.output
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in meta.parent.iterdir()) == before  # links kept, nothing added


# -- item 2: names from a package pass the reference grammar ---------------------------


def test_native_tag_cannot_escape_the_repository(new_registry, cli, tmp_path):
    manifest, blobs = _small_image()
    evil = "1.0/../../../../victim/manifests/latest"

    def edit(doc: dict) -> None:
        doc["images"][0]["tag"] = evil

    meta = build_native(tmp_path / "pkg", [("team/app", "1.0", manifest)], blobs, edit)
    target = new_registry()
    _refused(cli("load", str(meta), "--to", target.url), meta.name, evil)
    assert _catalog(target.url) == []


@pytest.mark.parametrize("field,value", [("repository", "Team/../victim"), ("digest", "md5:00")])
def test_native_image_record_must_follow_the_grammar(field, value, cli, tmp_path):
    manifest, blobs = _small_image()

    def edit(doc: dict) -> None:
        doc["images"][0][field] = value

    meta = build_native(tmp_path / "pkg", [("team/app", "1.0", manifest)], blobs, edit)
    _refused(cli("check", str(meta)), meta.name, value)


def test_image_transmit_image_name_is_checked_naming_the_meta(source, cli, tmp_path):
    meta = write_image_transmit(tmp_path / "pkg", source, _single(source), says="tar", actual="tar")
    doc = yaml.safe_load(meta.read_text())
    url, text = next(iter(doc["manifests"].items()))
    doc["manifests"] = {f"{url}/../../victim": text}
    meta.write_text(yaml.safe_dump(doc))
    _refused(cli("check", str(meta)), meta.name, "victim")


# -- item 6: size limits -----------------------------------------------------------------


def test_yaml_aliases_are_refused(cli, tmp_path):
    manifest, blobs = _small_image()
    meta = build_native(tmp_path / "pkg", [("team/app", "1.0", manifest)], blobs)
    bomb = "x0: &a0 [lol, lol, lol]\n" + "".join(
        f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}]\n" for i in range(1, 6)
    )
    meta.write_text(meta.read_text() + "extra:\n" + "".join(f"  {x}\n" for x in bomb.splitlines()))
    _refused(cli("check", str(meta)), "uses a YAML anchor or alias", meta.name)


def test_meta_file_size_is_capped(monkeypatch, tmp_path):
    monkeypatch.setattr(safeyaml, "MAX_META_BYTES", 1024)
    path = tmp_path / "big_meta.yaml"
    path.write_text("images:\n" + "- x\n" * 1000)
    with pytest.raises(PackageError, match="larger than"):
        read_meta_file(path)


def test_manifest_over_8_mib_is_refused(new_registry, cli, tmp_path):
    config = Blob(b"{}", "application/vnd.oci.image.config.v1+json")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [],
        "annotations": {"pad": "x" * (9 * 1024 * 1024)},
    }
    manifest = Blob(json.dumps(doc).encode(), OCI_MANIFEST)
    meta = build_native(tmp_path / "pkg", [("team/big", "1.0", manifest)], [config])
    target = new_registry()
    _refused(cli("load", str(meta), "--to", target.url), "8 MiB", meta.name)
    assert _catalog(target.url) == []


def test_gzip_bomb_entry_larger_than_declared_is_refused(source, new_registry, cli, tmp_path):
    samples = _single(source)[:1]
    meta = write_image_transmit(
        tmp_path / "pkg", source, samples, says="gzip", actual="gzip", files=1
    )
    _, _, entries = legacy_entries(source, samples)
    layer = max(entries, key=lambda h: len(entries[h][1]))
    bomb = [(n, d if h != layer else b"\0" * (64 * 1024 * 1024)) for h, (n, d) in entries.items()]
    data = meta.parent / next(iter(yaml.safe_load(meta.read_text())["datafiles"]))
    data.write_bytes(compress(tar_of(bomb), "gzip"))
    doc = yaml.safe_load(meta.read_text())
    doc["datafiles"] = {data.name: data.stat().st_size}
    meta.write_text(yaml.safe_dump(doc))
    before = sorted(p.name for p in meta.parent.iterdir())
    target = new_registry()
    _refused(cli("load", str(meta), "--to", target.url), data.name, layer, "declares")
    assert _catalog(target.url) == []
    assert sorted(p.name for p in meta.parent.iterdir()) == before


# -- item 7: hostile structure -----------------------------------------------------------


def _native_with(tmp_path: Path, edit) -> Path:
    manifest, blobs = _small_image()
    return build_native(tmp_path / "pkg", [("team/app", "1.0", manifest)], blobs, edit)


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda d: d["blobs"][0].__setitem__("size", "abc"), "blobs.0.size"),
        (lambda d: d.__setitem__("images", {"a": "b"}), "images"),
        (lambda d: d["datafiles"][0].__setitem__("name", ["x"]), "datafiles.0.name"),
        (lambda d: d.__setitem__("base", {"file": "../x_meta.yaml", "sha256": ""}), "base.file"),
    ],
)
def test_native_meta_with_wrong_types_is_refused(edit, key, cli, tmp_path):
    meta = _native_with(tmp_path, edit)
    _refused(cli("check", str(meta)), meta.name, key)


def test_deeply_nested_yaml_is_refused(cli, tmp_path):
    meta = _native_with(tmp_path, None)
    meta.write_text(meta.read_text() + "deep: " + "[" * 20000 + "]" * 20000 + "\n")
    _refused(cli("check", str(meta)), meta.name, "nested deeper than")


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda d: d.__setitem__("datafiles", ["a", "b"]), ["datafiles"]),
        (lambda d: d["datafiles"].update({k: "abc" for k in d["datafiles"]}), ["abc"]),
        (lambda d: d.__setitem__("blobs", {"zz": ["x"]}), ["blobs", "zz"]),
        (lambda d: d.__setitem__("compressor", ["gzip"]), ["compressor"]),
        (
            lambda d: d["manifests"].update(
                {k: "[" * 100000 + "]" * 100000 for k in d["manifests"]}
            ),
            ["nested too deeply"],
        ),
    ],
)
def test_image_transmit_meta_with_hostile_structure_is_refused(edit, words, source, cli, tmp_path):
    meta = write_image_transmit(tmp_path / "pkg", source, _single(source), says="tar", actual="tar")
    doc = yaml.safe_load(meta.read_text())
    edit(doc)
    meta.write_text(yaml.safe_dump(doc, width=10**7))
    _refused(cli("check", str(meta)), meta.name, *words)


@pytest.mark.parametrize("size", [8 * GIB - 1, 8 * GIB, 9 * GIB, 1024 * GIB])
def test_tar_header_holds_blobs_of_8_gib_and_more(size):
    name = "blobs/sha256/" + "ab" * 32
    block = header(name, size, 0)
    assert len(block) == 512
    assert parse_header(block, "test") == (name, size)
    assert tarfile.TarInfo.frombuf(block, "utf-8", "strict").size == size


def test_sparse_9_gib_entry_reads_back_with_tarfile(tmp_path):
    path = tmp_path / "big.tar"
    size = 9 * GIB
    name = "blobs/sha256/" + "cd" * 32
    with path.open("wb") as f:
        f.write(header(name, size, 0))
        f.seek(512 + size + padding(size))  # sparse: nothing is written in between
        f.write(END_OF_ARCHIVE)
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    assert [(m.name, m.size) for m in members] == [(name, size)]


def test_save_never_writes_through_a_link_in_its_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    journal = Journal(folder / "p_full_1.journal", "fingerprint")
    writer = PackageWriter(
        folder, "p_full_1", journal, incremental=None, source="x", compression="none", files=1
    )
    writer.data_path(0, raw=True).symlink_to(victim)
    with pytest.raises(PackageError, match="link"):
        writer.prepare([Item("sha256:" + "ab" * 32, 10, "application/octet-stream")])
    assert victim.read_text() == "precious"


def test_tar_header_with_a_negative_size_is_refused():
    block = bytearray(header("blobs/sha256/" + "ab" * 32, 5, 0))
    block[124:136] = b"\xff" * 12  # base-256 -1: a reader seeking by it would loop forever
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(ValueError, match="negative size"):
        parse_header(bytes(block), "test")
