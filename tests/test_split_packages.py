"""Packages that fit the carrier (issue 15): no data file over ``--max-file-size``.

Real registries on 127.0.0.1, real package files, the real CLI. The limit is
8 MB (8,000,000 bytes); one layer has 20 MiB, so it is split into parts.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.interrupt import interrupt_when, layer_digests
from support.verify import assert_image_copied

MB = 1024 * 1024
LIMIT = 8_000_000
IMAGES = ["split/big:1", "split/mid:1", "split/small:1"]


@pytest.fixture(scope="module")
def split_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("splitsrc"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    for name, layers in (
        ("big", [make_layer("split-big", 20 * MB, level=0), make_layer("split-b2", 300_000)]),
        ("mid", [make_layer("split-mid", 5 * MB, level=0)]),
        ("small", [make_layer("split-s1", 200_000), make_layer("split-s2", 90_000)]),
    ):
        push_image(client, f"split/{name}", "1", *make_image(layers))
    client.close()
    yield server
    server.stop()


def _meta(folder: Path) -> Path:
    found = list(folder.glob("*/*_meta.yaml"))
    assert len(found) == 1, found
    return found[0]


def _data_files(meta: Path) -> list[Path]:
    doc = yaml.safe_load(meta.read_text())
    return [meta.parent / d["name"] for d in doc["datafiles"]]


def _split_blobs(meta: Path) -> list[dict]:
    return [b for b in yaml.safe_load(meta.read_text())["blobs"] if "parts" in b]


def _catalog(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/_catalog", timeout=10) as r:
        return __import__("json").loads(r.read())["repositories"]


def _assert_loaded(source_url: str, target_url: str, images: list[str] = IMAGES) -> None:
    for line in images:
        repo, tag = line.split(":")
        assert_image_copied(source_url, repo, tag, target_url, repo)


@pytest.fixture(scope="module")
def split_package(split_source, tmp_path_factory):
    """One 8 MB-limited package of the three images, saved with the real CLI (-j 3)."""
    import subprocess
    import sys

    work = tmp_path_factory.mktemp("splitpkg")
    (work / "list.txt").write_text("\n".join(IMAGES) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "imageferry", "save", "-l", "list.txt", "--from", split_source.url]
        + ["-o", "out", "--max-file-size", "8M", "-j", "3", "--json"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return _meta(work / "out")


def test_every_data_file_fits_and_load_is_byte_exact(
    split_source, split_package, new_registry, cli
):
    files = _data_files(split_package)
    total = sum(f.stat().st_size for f in files)
    assert total > LIMIT and len(files) >= 4  # 26 MB cannot fit in fewer than 4 files of 8 MB
    assert all(f.stat().st_size <= LIMIT for f in files), [f.stat().st_size for f in files]
    assert sorted(p.name for p in split_package.parent.iterdir()) == sorted(
        [split_package.name, *(f.name for f in files)]
    )  # no journal, no temporary file left
    doc = yaml.safe_load(split_package.read_text())
    assert doc["version"] == 2
    big = layer_digests(split_source.url, "split/big", "1")[0]
    (split,) = _split_blobs(split_package)
    assert split["digest"] == big and len(split["parts"]) >= 3
    assert [p["file"] for p in split["parts"]] == sorted(p["file"] for p in split["parts"])

    target = new_registry()
    loaded = cli("load", str(split_package), "--to", target.url)
    assert loaded.returncode == 0, loaded.output
    _assert_loaded(split_source.url, target.url)
    checked = cli("check", str(split_package), "--to", target.url)
    assert checked.returncode == 0, checked.output


def test_extracted_parts_join_to_the_blob(split_source, split_package, tmp_path):
    """Any tar reader extracts a split package; ``cat`` of the parts is the blob."""
    for f in _data_files(split_package):
        with tarfile.open(f) as tar:
            tar.extractall(tmp_path, filter="data")
    (split,) = _split_blobs(split_package)
    hex_ = split["digest"].split(":")[1]
    parts = sorted((tmp_path / "blobs" / "sha256").glob(f"{hex_}.part*"))
    assert len(parts) == len(split["parts"])
    joined = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()
    assert joined == hex_
    assert (tmp_path / "index.json").is_file() and (tmp_path / "oci-layout").is_file()


def _parts_files(meta: Path) -> list[str]:
    (split,) = _split_blobs(meta)
    return [p["file"] for p in split["parts"]]


@pytest.mark.parametrize(
    ("damage", "verify"),
    [("missing", "full"), ("truncate", "full"), ("swap", "full"), ("swap", "quick")],
)
def test_a_missing_short_or_swapped_part_is_named_and_nothing_pushed(
    damage, verify, split_package, new_registry, cli, tmp_path
):
    copy = tmp_path / "pkg"
    shutil.copytree(split_package.parent, copy)
    meta = copy / split_package.name
    first, second = (copy / name for name in _parts_files(meta)[:2])
    if damage == "missing":
        second.unlink()
    elif damage == "truncate":
        with second.open("r+b") as f:
            f.truncate(second.stat().st_size - 4096)
    else:  # two files of parts swapped, and made the same size so only their content differs
        size = min(first.stat().st_size, second.stat().st_size)
        a, b = first.read_bytes()[:size], second.read_bytes()[:size]
        first.write_bytes(b)
        second.write_bytes(a)
        doc = yaml.safe_load(meta.read_text())
        for d in doc["datafiles"]:
            if d["name"] in (first.name, second.name):
                d["size"] = size
        meta.write_text(yaml.safe_dump(doc, sort_keys=False))
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url, "--verify", verify)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    named = second.name if damage != "swap" else first.name
    assert named in result.stderr, result.stderr
    if damage == "missing":
        assert "is missing" in result.stderr and "part 2 of" in result.stderr
    assert _catalog(target.url) == []
    check = cli("check", str(meta), "--verify", verify)
    assert check.returncode == 2 and named in check.stderr, check.output


def test_single_file_zstd_packs_into_as_few_files_as_the_limit_allows(
    split_source, new_registry, cli, tmp_path
):
    cfg = f"source:\n- registry: {split_source.url}\nmaxfilesize: 8M\n"
    (tmp_path / "cfg.yaml").write_text(cfg)
    (tmp_path / "list.txt").write_text("\n".join(IMAGES) + "\n")
    saved = cli("save", "-l", "list.txt", "-o", "out", "--single-file", "--compress", "zstd")
    assert saved.returncode == 0, saved.output
    meta = _meta(tmp_path / "out")
    files = _data_files(meta)
    sizes = [f.stat().st_size for f in files]
    assert all(f.name.endswith(".tar.zst") for f in files)
    assert all(s <= LIMIT for s in sizes), sizes
    assert len(files) == -(-sum(sizes) // LIMIT), sizes  # no file more than needed
    assert yaml.safe_load(meta.read_text())["compression"] == "zstd"
    assert _split_blobs(meta)
    target = new_registry()
    loaded = cli("load", str(meta), "--to", target.url, "--verify", "quick")
    assert loaded.returncode == 0, loaded.output
    _assert_loaded(split_source.url, target.url)


def test_a_limit_above_every_file_keeps_format_version_1(split_source, cli, tmp_path):
    (tmp_path / "list.txt").write_text("split/small:1\n")
    saved = cli("save", "-l", "list.txt", "--from", split_source.url, "-o", "o", "--fat32")
    assert saved.returncode == 0, saved.output
    doc = yaml.safe_load(_meta(tmp_path / "o").read_text())
    assert doc["version"] == 1 and not any("parts" in b for b in doc["blobs"])


@pytest.mark.parametrize("size", ["12Q", "100", "4i"])
def test_a_bad_size_is_bad_input(size, split_source, cli, tmp_path):
    result = cli("save", "split/small:1", "--from", split_source.url, "--max-file-size", size)
    assert result.returncode == 2, result.output
    assert "--max-file-size" in result.stderr and "Traceback" not in result.output
    (tmp_path / "cfg.yaml").write_text(f"source:\n- registry: {split_source.url}\nmaxfilesize: x\n")
    bad = cli("save", "split/small:1")
    assert bad.returncode == 2 and "line 3" in bad.stderr and "maxfilesize" in bad.stderr


def test_an_interrupted_split_save_resumes(split_source, new_registry, cli, tmp_path):
    (tmp_path / "list.txt").write_text("split/mid:1\nsplit/big:1\n")
    proxy = FaultProxy(
        split_source.port, lambda m, p, n: Fault(rate=16 * MB) if "/blobs/" in p else None
    )
    save = ["save", "-l", "list.txt", "--from", proxy.url, "-o", "out", "--max-file-size", "8M"]
    mid = layer_digests(split_source.url, "split/mid", "1")[0]

    def mid_saved() -> bool:
        text = "".join(p.read_text() for p in (tmp_path / "out").glob("*/*.journal"))
        return f'"done": "{mid}"' in text

    try:
        cut = interrupt_when([*save, "-j", "1"], tmp_path, ready=mid_saved)
        assert cut.returncode == 130, cut.stdout + cut.stderr
        assert not list((tmp_path / "out").glob("*/*_meta.yaml"))
        proxy.rule = lambda m, p, n: None
        resumed = cli(*save, "-j", "3", "--json")
    finally:
        proxy.stop()
    assert resumed.returncode == 0, resumed.output
    assert resumed.json()["bytes_read"] < 22 * MB  # the 5 MiB layer was kept
    meta = _meta(tmp_path / "out")
    assert all(f.stat().st_size <= LIMIT for f in _data_files(meta))
    assert _split_blobs(meta)
    target = new_registry()
    loaded = cli("load", str(meta), "--to", target.url)
    assert loaded.returncode == 0, loaded.output
    _assert_loaded(split_source.url, target.url, ["split/mid:1", "split/big:1"])


def test_an_incremental_split_package_loads_on_top_of_its_base(
    split_source, new_registry, cli, tmp_path
):
    (tmp_path / "base.txt").write_text("split/small:1\nsplit/mid:1\n")
    (tmp_path / "list.txt").write_text("\n".join(IMAGES) + "\n")
    limit = ["--from", split_source.url, "--max-file-size", "8M"]
    base = cli("save", "-l", "base.txt", "-o", "base", *limit)
    assert base.returncode == 0, base.output
    base_meta = _meta(tmp_path / "base")
    inc = cli("save", "-l", "list.txt", "-o", "inc", "--base", str(base_meta), *limit)
    assert inc.returncode == 0, inc.output
    inc_meta = _meta(tmp_path / "inc")
    doc = yaml.safe_load(inc_meta.read_text())
    assert doc["kind"] == "incremental" and doc["version"] == 2
    assert all(f.stat().st_size <= LIMIT for f in _data_files(inc_meta))
    mid = layer_digests(split_source.url, "split/mid", "1")[0]
    assert not any(b["digest"] == mid and ("file" in b or "parts" in b) for b in doc["blobs"])
    assert _split_blobs(inc_meta)

    target = new_registry()
    for meta in (base_meta, inc_meta):
        loaded = cli("load", str(meta), "--to", target.url)
        assert loaded.returncode == 0, loaded.output
    _assert_loaded(split_source.url, target.url)


@pytest.mark.parametrize("zstd", [False, True])
def test_the_layout_never_passes_the_limit(zstd):
    import random

    from imageferry.package.layout import Budget, Item, file_costs, plan_layout
    from imageferry.package.tarfmt import entry_size

    rng = random.Random(15)
    for _ in range(200):
        budget = Budget(rng.choice([1, 2, 8, 100]) * MB + rng.randrange(4096), zstd)
        items = [
            Item(f"sha256:{rng.randbytes(32).hex()}", rng.choice([0, 1, 600, 2 * MB, 9 * MB]), "")
            for _ in range(rng.randrange(1, 12))
        ]
        files = rng.randrange(1, 6)
        layout = plan_layout(items, files, budget)
        assert layout == plan_layout(list(reversed(items)), files, budget)  # deterministic
        assert max(file_costs(layout, budget)) <= budget.capacity
        spans: dict[int, list[tuple[int, int]]] = {}
        for item in items:
            slot = layout.slots[item.digest]
            pieces = slot.pieces()
            assert sum(p.size for p in pieces) == item.size
            assert [p.file for p in pieces] == sorted({p.file for p in pieces})  # consecutive
            for p in pieces:
                spans.setdefault(p.file, []).append((p.offset, p.offset + entry_size(p.size)))
        for k, used in spans.items():
            used.sort()
            assert all(a[1] <= b[0] for a, b in zip(used, used[1:], strict=False))
            assert used[-1][1] == layout.ends[k]


@pytest.mark.parametrize("edit", ["version 1", "sizes", "unknown file", "one part"])
def test_an_edited_split_meta_is_refused(edit, split_package, cli, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(split_package.parent, copy)
    meta = copy / split_package.name
    doc = yaml.safe_load(meta.read_text())
    split = next(b for b in doc["blobs"] if "parts" in b)
    if edit == "version 1":
        doc["version"] = 1
    elif edit == "sizes":
        split["parts"][0]["size"] -= 1
    elif edit == "unknown file":
        split["parts"][1]["file"] = "elsewhere.tar"
    else:
        split["parts"] = split["parts"][:1]
    meta.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = cli("check", str(meta), "--verify", "quick")
    assert result.returncode == 2, result.output
    assert split["digest"] in result.stderr or "version 1" in result.stderr, result.stderr
    assert "Traceback" not in result.output
