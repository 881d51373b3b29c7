"""Packages written by image-transmit (the seed tool) load into a registry unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from support.packages import write_image_transmit
from support.verify import assert_image_copied, get_manifest

SKIP = "https://last.img/skip/it:"


def _single_images(source):
    return [s for s in source.samples if "index" not in s.media_type and "list" not in s.media_type]


def write_legacy_package(
    folder: Path,
    source,
    samples,
    *,
    compressor: str = "tar",
    skip: set[str] = frozenset(),
    base: str | None = None,
    stem: str = "img_full_202106122344",
) -> Path:
    """The files image-transmit writes: data tars of <hex>.<suffix> entries, and the meta."""
    return write_image_transmit(
        folder,
        source,
        samples,
        says=compressor,
        actual=compressor,
        skip=skip,
        stem=stem,
        base=base or "base_meta.yaml",
        suffix=compressor,
    )


@pytest.mark.parametrize("compressor", ["tar", "zstd"])
def test_image_transmit_package_loads(compressor, source, new_registry, cli, tmp_path):
    samples = _single_images(source)
    meta = write_legacy_package(tmp_path / "pkg", source, samples, compressor=compressor)
    check = cli("check", str(meta))
    assert check.returncode == 0, check.output
    assert f"{samples[0].repository}:{samples[0].tag}" in check.stdout
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url)
    assert result.returncode == 0, result.output
    for s in samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)
    assert not list((tmp_path / "pkg").glob("*unpacked*"))  # temporary plain tars are gone


def test_image_transmit_incremental_needs_its_base(source, new_registry, cli, tmp_path):
    samples = [s for s in _single_images(source) if s.repository.startswith("demo/app")]
    full = write_legacy_package(tmp_path / "full", source, samples[:1])
    base_layers = {
        json.loads(get_manifest(source.url, samples[0].repository, "1.0"))["layers"][0][
            "digest"
        ].split(":")[1]
    }
    inc = write_legacy_package(
        tmp_path / "inc",
        source,
        samples[1:],
        skip=base_layers,
        base=full.name,
        stem="img_incr_202106130839",
    )
    target = new_registry()
    alone = cli("load", str(inc), "--to", target.url)
    assert alone.returncode == 2 and f"Load {full.name} first" in alone.stderr
    for meta in (full, inc):
        done = cli("load", str(meta), "--to", target.url)
        assert done.returncode == 0, done.output
    for s in samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)


def test_save_incremental_on_an_image_transmit_base(source, cli, tmp_path):
    samples = _single_images(source)
    base = write_legacy_package(tmp_path / "old", source, samples)
    (tmp_path / "list.txt").write_text(source.list_text())
    inc = cli("save", "-l", "list.txt", "--from", source.url, "-o", "new", "--base", str(base))
    assert inc.returncode == 0, inc.output
    meta = yaml.safe_load(next((tmp_path / "new").glob("*/*_meta.yaml")).read_text())
    carried = {b["digest"] for b in meta["blobs"] if "file" in b}
    legacy = {f"sha256:{h}" for h in yaml.safe_load(base.read_text())["blobs"]}
    assert carried and not carried & legacy
    assert meta["base"]["file"] == base.name
