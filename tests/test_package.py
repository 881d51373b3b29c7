"""Offline packages: save, load, incremental, single file, zstd, subsets, damage, resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest
import yaml

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.interrupt import any_blob_in, interrupt_when, layer_digests
from support.verify import assert_image_copied, get_manifest

MB = 1024 * 1024


def _meta(folder: Path) -> Path:
    metas = sorted(folder.glob("*/*_meta.yaml"))
    assert len(metas) == 1, metas
    return metas[0]


def _catalog(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v2/_catalog", timeout=10) as resp:
        return json.loads(resp.read())["repositories"]


def _verify_all(source, target, samples=None):
    for s in samples or source.samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)


@pytest.fixture(scope="module")
def full_package(source, tmp_path_factory):
    """One full package of the dozen samples, saved once for the read-only tests."""
    work = tmp_path_factory.mktemp("pkg")
    (work / "list.txt").write_text(source.list_text())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imageferry",
            "save",
            "-l",
            "list.txt",
            "--from",
            source.url,
            "-o",
            "out",
            "-j",
            "3",
            "--json",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return _meta(work / "out")


def test_full_save_then_load_is_byte_identical(source, full_package, new_registry, cli):
    meta = yaml.safe_load(full_package.read_text())
    assert meta["kind"] == "full" and len(meta["images"]) == 12
    assert len(meta["datafiles"]) == 3
    assert "password" not in full_package.read_text()
    digests = [b["digest"] for b in meta["blobs"]]
    assert len(digests) == len(set(digests))  # every blob once, however many images share it
    names = [p.name for p in full_package.parent.iterdir()]
    assert all(":" not in n for n in names)

    target = new_registry()
    result = cli("load", str(full_package), "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    _verify_all(source, target)
    again = cli("load", str(full_package), "--to", target.url, "--json")
    assert again.returncode == 0 and again.json()["bytes_read"] == 0

    check = cli("check", str(full_package), "--to", target.url)
    assert check.returncode == 0, check.output
    assert "full package" in check.stdout and "multi/arch:1" in check.stdout
    assert check.stdout.count("same") == 12


def test_extracted_full_package_is_an_oci_layout_for_skopeo(full_package, source, tmp_path):
    layout = tmp_path / "layout"
    layout.mkdir()
    for data in sorted(full_package.parent.glob("*.tar")):
        with tarfile.open(data) as tar:
            tar.extractall(layout, filter="data")
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for ref in ("multi/arch:1", "team/services:v1"):
        done = subprocess.run(
            ["skopeo", "inspect", "--raw", f"oci:{layout}:{ref}"], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        repo, tag = ref.split(":")
        assert done.stdout == get_manifest(source.url, repo, tag)
    copied = subprocess.run(
        ["skopeo", "copy", "--all", f"oci:{layout}:multi/arch:1", f"dir:{tmp_path / 'dir'}"],
        capture_output=True,
        timeout=60,
    )
    assert copied.returncode == 0, copied.stderr


def test_subset_load_with_rename_and_namespace(source, full_package, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {target.url}\n  repository: cust\n"
    )
    (tmp_path / "subset.txt").write_text("demo/app0:1.0 -> renamed/app:9\nteam/services\n")
    result = cli("load", str(full_package), "--to", "site", "-l", "subset.txt", "--json")
    assert result.returncode == 0, result.output
    assert len(result.json()["images"]) == 4
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "cust/app", "9")
    for tag in ("v0", "v1", "v2"):
        assert_image_copied(source.url, "team/services", tag, target.url, "cust/services")
    assert sorted(_catalog(target.url)) == ["cust/app", "cust/services"]

    (tmp_path / "bad.txt").write_text("demo/app0:1.0\nnot/there:1\n")
    bad = cli("load", str(full_package), "--to", "site", "-l", "bad.txt")
    assert bad.returncode == 2 and "bad.txt, line 2: not/there:1 is not in" in bad.stderr


def _damaged_copy(full_package: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "damaged"
    shutil.copytree(full_package.parent, dst)
    return dst / full_package.name


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing", "edit-meta", "dotdot"])
def test_damaged_package_is_refused_and_nothing_pushed(
    damage, full_package, new_registry, cli, tmp_path
):
    meta_path = _damaged_copy(full_package, tmp_path)
    meta = yaml.safe_load(meta_path.read_text())
    data = meta_path.parent / meta["datafiles"][1]["name"]
    expect = {
        "truncate": "cut short",
        "flip": "is damaged",
        "missing": "is missing",
        "edit-meta": "edited",
        "dotdot": "unsafe path",
    }[damage]
    if damage == "truncate":
        with data.open("r+b") as f:
            f.truncate(data.stat().st_size - 700)
    elif damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 3] ^= 0x01
        data.write_bytes(bytes(raw))
    elif damage == "missing":
        data.unlink()
    elif damage == "edit-meta":
        meta["blobs"].append(dict(meta["blobs"][0]))
        meta_path.write_text(yaml.safe_dump(meta))
    else:  # a tar entry renamed to ../…, with sizes and checksums made to match again
        raw = bytearray(data.read_bytes())
        name = b"../../../../etc/evil".ljust(100, b"\0")
        raw[0:100] = name
        checksum = sum(raw[0:148]) + 8 * 32 + sum(raw[156:512])
        raw[148:156] = b"%06o\0 " % checksum
        data.write_bytes(bytes(raw))
        import hashlib

        meta["datafiles"][1]["sha256"] = hashlib.sha256(raw).hexdigest()
        meta_path.write_text(yaml.safe_dump(meta))
    target = new_registry()
    result = cli("load", str(meta_path), "--to", target.url)
    assert result.returncode == 2, result.output
    assert expect in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert _catalog(target.url) == []
    check = cli("check", str(meta_path))
    assert check.returncode == 2 and expect in check.stderr


def test_incremental_carries_only_changes(source, new_registry, cli, tmp_path):
    company, site = new_registry(), new_registry()
    seeded = cli(
        "copy", *[s.line for s in source.samples], "--from", source.url, "--to", company.url
    )
    assert seeded.returncode == 0, seeded.output
    (tmp_path / "list.txt").write_text(source.list_text() + "demo/new:1\n")
    client = Registry(RegistryConfig(registry=company.url), writable=True)
    first = make_image([make_layer("new-base", 300_000)])
    push_image(client, "demo/new", "1", *first)
    full = cli("save", "-l", "list.txt", "--from", company.url, "-o", "full")
    assert full.returncode == 0, full.output
    full_meta = _meta(tmp_path / "full")

    changed = make_image([make_layer("new-base", 300_000), make_layer("new-fix", 200_000)])
    push_image(client, "demo/new", "1", *changed)
    client.close()
    inc = cli(
        "save",
        "-l",
        "list.txt",
        "--from",
        company.url,
        "-o",
        "inc",
        "--base",
        str(full_meta),
        "--json",
    )
    assert inc.returncode == 0, inc.output
    inc_meta = _meta(tmp_path / "inc")
    assert "_inc_" in inc_meta.name
    doc = yaml.safe_load(inc_meta.read_text())
    assert doc["kind"] == "incremental" and doc["base"]["file"] == full_meta.name
    carried = [b for b in doc["blobs"] if "file" in b]
    assert sum(b["size"] for b in carried) < 210_000  # the new layer, a config, a manifest
    assert sum(d["size"] for d in doc["datafiles"]) < 230_000

    alone = cli("load", str(inc_meta), "--to", site.url)
    assert alone.returncode == 2
    assert f"Load {full_meta.name} first" in alone.stderr
    assert _catalog(site.url) == []

    for meta in (full_meta, inc_meta):
        loaded = cli("load", str(meta), "--to", site.url)
        assert loaded.returncode == 0, loaded.output
    _verify_all(source, site)
    assert_image_copied(company.url, "demo/new", "1", site.url, "demo/new")


def test_single_file_zstd_round_trip(source, new_registry, cli, tmp_path):
    (tmp_path / "list.txt").write_text(source.list_text())
    saved = cli(
        "save",
        "-l",
        "list.txt",
        "--from",
        source.url,
        "-o",
        "out",
        "--single-file",
        "--compress",
        "zstd",
        "-j",
        "4",
    )
    assert saved.returncode == 0, saved.output
    meta = _meta(tmp_path / "out")
    files = sorted(p.name for p in meta.parent.iterdir() if p != meta)
    assert len(files) == 1 and files[0].endswith("_0.tar.zst")
    target = new_registry()
    loaded = cli("load", str(meta), "--to", target.url)
    assert loaded.returncode == 0, loaded.output
    _verify_all(source, target)


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("slowsrc"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    for i in range(3):
        push_image(
            client, f"slow/img{i}", "1", *make_image([make_layer(f"slowpkg-{i}", 5 * MB, level=0)])
        )
    client.close()
    yield server
    server.stop()


def test_interrupted_save_and_load_resume(slow_source, new_registry, cli, tmp_path):
    lines = ["slow/img0:1", "slow/img1:1", "slow/img2:1"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    proxy = FaultProxy(
        slow_source.port, lambda m, p, n: Fault(rate=4 * MB) if "/blobs/" in p else None
    )
    save = ["save", "-l", "list.txt", "--from", proxy.url, "-o", "out", "-j", "1"]
    layers = [
        (f"slow/img{i}", layer_digests(slow_source.url, f"slow/img{i}", "1")[0]) for i in range(3)
    ]

    def a_layer_saved() -> bool:  # the journal records a finished 5 MB layer
        text = "".join(p.read_text() for p in (tmp_path / "out").glob("*/*.journal"))
        return any(f'"done": "{digest}"' in text for _, digest in layers)

    try:
        cut = interrupt_when(save, tmp_path, ready=a_layer_saved)
        assert cut.returncode == 130, cut.stdout + cut.stderr
        assert not list((tmp_path / "out").glob("*/*_meta.yaml"))  # visibly unfinished
        assert list((tmp_path / "out").glob("*/*.journal"))
        proxy.rule = lambda m, p, n: None  # the same command again, at full speed, more -j
        resumed = cli(*save[:-2], "-j", "3", "--json")
    finally:
        proxy.stop()
    assert resumed.returncode == 0, resumed.output
    assert resumed.json()["bytes_read"] < 12 * MB  # at least one finished layer was kept
    meta = _meta(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*/*.journal"))

    target = new_registry()
    slow_target = FaultProxy(
        target.port, lambda m, p, n: Fault(rate=4 * MB) if m in ("PUT", "PATCH") else None
    )
    try:
        cut = interrupt_when(
            ["load", str(meta), "--to", slow_target.url, "-j", "1"],
            tmp_path,
            ready=any_blob_in(target.url, layers),
        )
    finally:
        slow_target.stop()
    assert cut.returncode == 130, cut.stdout + cut.stderr
    done = cli("load", str(meta), "--to", target.url, "--json")
    assert done.returncode == 0, done.output
    # what the first load finished (a layer, maybe a whole image) is not read again
    assert done.json()["bytes_read"] < 11 * MB
    for i in range(3):
        assert_image_copied(slow_source.url, f"slow/img{i}", "1", target.url, f"slow/img{i}")


def test_incremental_base_layers_found_in_other_repositories(source, new_registry, cli, tmp_path):
    """The base put a shared layer into demo/app0; the increment's demo/app1 gets it mounted."""
    from support.tokenserver import TokenServer

    tokens = TokenServer(tmp_path / "tokens", {"robot": "pw-robot-1"}, catalog=False).start()
    site = new_registry(auth=tokens.registry_auth())
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {site.url}\n  user: robot\n  password: pw-robot-1\n"
    )
    try:
        full = cli("save", "demo/app0:1.0", "--from", source.url, "-o", "out", "--prefix", "base")
        assert full.returncode == 0, full.output
        base = next((tmp_path / "out").glob("*/base_full_*_meta.yaml"))
        inc = cli(
            "save",
            "demo/app1:1.0",
            "--from",
            source.url,
            "-o",
            "out",
            "--prefix",
            "next",
            "--base",
            str(base),
        )
        assert inc.returncode == 0, inc.output
        inc_meta = next((tmp_path / "out").glob("*/next_inc_*_meta.yaml"))
        doc = yaml.safe_load(inc_meta.read_text())
        assert any("file" not in b for b in doc["blobs"])  # the shared layer stayed in the base

        assert cli("load", str(base), "--to", "site").returncode == 0
        loaded = cli("load", str(inc_meta), "--to", "site")
        assert loaded.returncode == 0, loaded.output
        assert "linked 1 base layer(s)" in loaded.output
        check = cli("check", "demo/app1:1.0", "--from", source.url, "--to", "site")
        assert "has it (same digest)" in check.stdout, check.output
    finally:
        tokens.stop()


def test_a_save_that_writes_nothing_leaves_no_empty_folders(source, cli, tmp_path):
    """Every image failing to resolve (a typo, a source down): no empty dated folder, nor
    a new ``-o`` folder, is left behind to look like a package; a folder that was there
    before stays."""
    done = cli("save", "no/such:1", "--from", source.url, "-o", "out/new")
    assert done.returncode == 1, done.output
    assert "no/such:1" in done.output and not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    done = cli("save", "no/such:1", "--from", source.url, "-o", "kept")
    assert done.returncode == 1 and list((tmp_path / "kept").iterdir()) == []
