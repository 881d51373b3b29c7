"""Crash-safe packages: kill -9 of a save, data files cut short behind the journal, full disks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.manifest import OCI_INDEX, OCI_MANIFEST, Descriptor
from imageferry.package.layout import Item
from imageferry.package.writer import PackageWriter
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.interrupt import layer_digests
from support.verify import assert_image_copied, get_manifest

MB = 1024 * 1024
IMAGES = [f"crash/img{i}" for i in range(3)]
LINES = "".join(f"{repo}:1\n" for repo in IMAGES)


@pytest.fixture(scope="module")
def crash_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("crashsrc"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    for i, repo in enumerate(IMAGES):
        push_image(client, repo, "1", *make_image([make_layer(f"crash-{i}", 2 * MB, level=0)]))
    client.close()
    yield server
    server.stop()


@pytest.fixture
def slow_proxy(crash_source):
    proxy = FaultProxy(
        crash_source.port, lambda m, p, n: Fault(rate=2 * MB) if "/blobs/" in p else None
    )
    yield proxy
    proxy.stop()


class Journal:
    """The journal as the test reads it: plain JSON, not imageferry's reader."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lines = path.read_text().splitlines()
        self.slots = json.loads(lines[0])["layout"]["slots"]
        self.done = [json.loads(x)["done"] for x in lines[1:] if '"done"' in x]

    def data_file(self, digest: str) -> Path:
        stem = self.path.name[: -len(".journal")]
        return self.path.with_name(f"{stem}_{self.slots[digest][0]}.tar")

    def span(self, digest: str) -> tuple[int, int]:
        """Where the blob's bytes lie in its data file."""
        _, offset, size, _ = self.slots[digest]
        return offset + 512, offset + 512 + size

    def claimed_end(self, data_file: Path) -> int:
        return max(self.span(d)[1] for d in self.done if self.data_file(d) == data_file)


def _journal(out: Path) -> Journal:
    (path,) = out.glob("*/*.journal")
    return Journal(path)


def _kill_save_after_a_layer(cwd: Path, proxy_url: str, layers: list[str]) -> Journal:
    """Start a save, SIGKILL it once the journal claims a layer (no chance to clean up)."""
    args = ["save", "-l", "list.txt", "--from", proxy_url, "-o", "out", "-j", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "imageferry", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        while not any(f'"done": "{d}"' in _text(cwd / "out") for d in layers):
            assert proc.poll() is None, "the save ended before it could be killed"
            assert time.monotonic() < deadline, "no layer was saved"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert not list((cwd / "out").glob("*/*_meta.yaml"))
    return _journal(cwd / "out")


def _text(out: Path) -> str:
    return "".join(p.read_text() for p in out.glob("*/*.journal"))


def _layers(server) -> list[str]:
    return [layer_digests(server.url, repo, "1")[0] for repo in IMAGES]


def _load_and_compare(cli, new_registry, source, out: Path) -> None:
    (meta,) = out.glob("*/*_meta.yaml")
    target = new_registry()
    loaded = cli("load", str(meta), "--to", target.url)
    assert loaded.returncode == 0, loaded.output
    for repo in IMAGES:
        assert_image_copied(source.url, repo, "1", target.url, repo)


@pytest.mark.parametrize("damage", ["cut", "zeroed", "deleted"])
def test_killed_save_with_a_data_file_damaged_behind_the_journal_is_repaired(
    damage, crash_source, slow_proxy, new_registry, cli, tmp_path
):
    (tmp_path / "list.txt").write_text(LINES)
    journal = _kill_save_after_a_layer(tmp_path, slow_proxy.url, _layers(crash_source))
    data = journal.data_file(journal.done[0])
    end = min(data.stat().st_size, journal.claimed_end(data))
    if damage == "deleted":  # as a compressed save that stopped on a full disk may leave it
        data.unlink()
    else:
        with data.open("r+b") as f:  # 4 KiB of what the journal claims go missing
            if damage == "cut":
                f.truncate(end - 4096)
            else:
                f.seek(end - 4096)
                f.write(b"\0" * 4096)
    with journal.path.open("a") as f:
        f.write('{"done": "sha256:0123')  # and its last line was torn by the crash

    slow_proxy.rule = lambda m, p, n: None  # the same command again, at full speed
    rerun = cli("save", "-l", "list.txt", "--from", slow_proxy.url, "-o", "out", "-j", "1")
    assert rerun.returncode == 0, rerun.output
    assert "resuming" in rerun.output and "starting over" not in rerun.output
    assert not list((tmp_path / "out").glob("*/*.journal"))
    _load_and_compare(cli, new_registry, crash_source, tmp_path / "out")


def test_a_recorded_tag_whose_blobs_were_never_written_is_not_trusted(
    crash_source, slow_proxy, new_registry, cli, tmp_path
):
    (tmp_path / "list.txt").write_text(LINES)
    layers = _layers(crash_source)
    journal = _kill_save_after_a_layer(tmp_path, slow_proxy.url, layers)
    unsaved = [
        repo for repo, layer in zip(IMAGES, layers, strict=True) if layer not in journal.done
    ]
    assert unsaved, "every layer was saved before the kill"
    manifest = get_manifest(crash_source.url, unsaved[0], "1")
    assert manifest is not None
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    with journal.path.open("a") as f:  # as older code could record it, before the blobs
        f.write(json.dumps({"tag": [unsaved[0], "1", digest]}) + "\n")

    slow_proxy.rule = lambda m, p, n: None
    rerun = cli("save", "-l", "list.txt", "--from", slow_proxy.url, "-o", "out", "-j", "1")
    assert rerun.returncode == 0, rerun.output
    _load_and_compare(cli, new_registry, crash_source, tmp_path / "out")


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(request, tmp_path):
    """A 3 MiB tmpfs, or as parametrised (root only: skipped, with why, where refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    size = getattr(request, "param", "3m")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode:
        pytest.skip(f"a small tmpfs to fill cannot be mounted here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def _grow(disk: Path) -> None:
    """Free space, as a user would: here by making the tmpfs bigger."""
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)


def _assert_claims_hold(out: Path) -> None:
    """Every line of the journal is whole, and every blob it claims is in its data file."""
    journal = _journal(out)
    for line in journal.path.read_text().splitlines():
        json.loads(line)
    for digest in journal.done:
        start, end = journal.span(digest)
        with journal.data_file(digest).open("rb") as f:
            f.seek(start)
            data = f.read(end - start)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest


def test_save_on_a_full_disk_says_where_and_how_much_then_a_rerun_completes(
    crash_source, small_disk, new_registry, cli, tmp_path
):
    (tmp_path / "list.txt").write_text(LINES)
    out = small_disk / "out"
    args = ("save", "-l", "list.txt", "--from", crash_source.url, "-o", str(out), "-j", "2")
    full = cli(*args)
    assert full.returncode == 1, full.output
    assert "Traceback" not in full.output and "internal" not in full.output
    assert f"the disk of {out}" in full.output and "is full" in full.output
    assert "needs about" in full.output and "MiB more" in full.output
    assert not list(out.glob("*/*_meta.yaml"))
    _assert_claims_hold(out)

    _grow(small_disk)
    rerun = cli(*args)
    assert rerun.returncode == 0, rerun.output
    assert "resuming" in rerun.output
    _load_and_compare(cli, new_registry, crash_source, out)


@pytest.mark.parametrize("small_disk", ["10m"], indirect=True)
def test_a_full_disk_while_compressing_leaves_no_package_and_a_rerun_finishes(
    crash_source, small_disk, new_registry, cli, tmp_path
):
    (tmp_path / "list.txt").write_text(LINES)
    out = small_disk / "out"
    args = ("save", "-l", "list.txt", "--from", crash_source.url, "-o", str(out), "-j", "1")
    full = cli(*args, "--compress", "zstd")  # the blobs fit, their compressed copy does not
    assert full.returncode == 1, full.output
    assert "Traceback" not in full.output and "internal" not in full.output
    assert f"the disk of {out}" in full.output and "needs about" in full.output
    assert not list(out.glob("*/*_meta.yaml")) and not list(out.glob("*/*.zst"))
    _assert_claims_hold(out)

    _grow(small_disk)
    rerun = cli(*args, "--compress", "zstd", "--json")
    assert rerun.returncode == 0, rerun.output
    assert rerun.json()["bytes_read"] == 0  # every blob was kept from the first run
    _load_and_compare(cli, new_registry, crash_source, out)


def _cache_entries(cache: Path) -> dict[str, bytes]:
    return {f"sha256:{p.name}": p.read_bytes() for p in (cache / "blobs" / "sha256").glob("*")}


def test_copy_with_its_cache_on_a_full_disk_goes_on_and_says_so(
    crash_source, small_disk, new_registry, cli, tmp_path
):
    cache = small_disk / "cache"
    (tmp_path / "cfg.yaml").write_text(f"cache:\n  pathname: {cache}\n")
    args = ("-l", "list.txt", "--from", crash_source.url)
    (tmp_path / "list.txt").write_text(LINES)
    first = new_registry()
    copied = cli("copy", *args, "--to", first.url)
    assert copied.returncode == 0, copied.output  # the cache is an aid, never a failure
    for repo in IMAGES:
        assert_image_copied(crash_source.url, repo, "1", first.url, repo)
    log = (tmp_path / "imageferry.log").read_text()
    assert f"cache folder {cache} is full" in log and "MiB" in log, log
    entries = _cache_entries(cache)
    assert len(entries) < 6  # some blobs did not fit
    for digest, data in entries.items():  # what is there is whole
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    assert not [
        p for d in ("tmp", "partial") if (cache / d).is_dir() for p in (cache / d).iterdir()
    ]

    _grow(small_disk)
    second = new_registry()
    again = cli("copy", *args, "--to", second.url)
    assert again.returncode == 0, again.output
    assert len(_cache_entries(cache)) == 6  # 3 layers, 3 configs: all cached now


# -- what a recorded tag is worth, at the writer itself ----------------------------------------


def _blob(data: bytes, media_type: str) -> tuple[bytes, Descriptor]:
    return data, Descriptor(media_type, Digest.of_bytes(data), len(data))


def test_a_tag_of_an_index_counts_only_when_every_child_and_blob_is_in_the_package(tmp_path):
    layer = _blob(b"layer bytes" * 100, "application/vnd.oci.image.layer.v1.tar")
    config = _blob(
        b'{"architecture": "amd64", "os": "linux"}', "application/vnd.oci.image.config.v1+json"
    )

    def ref(blob: tuple[bytes, Descriptor]) -> dict:
        return {
            "mediaType": blob[1].media_type,
            "digest": str(blob[1].digest),
            "size": blob[1].size,
        }

    child = _blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": ref(config),
                "layers": [ref(layer)],
            }
        ).encode(),
        OCI_MANIFEST,
    )
    index = _blob(
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [ref(child)]}
        ).encode(),
        OCI_INDEX,
    )
    blobs = [layer, config, child, index]
    writer = PackageWriter.open(
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=2
    )
    writer.prepare([Item(str(d.digest), d.size, d.media_type) for _, d in blobs])
    for data, desc in (config, child, index):  # everything but the layer, as older code could
        writer.put_blob("r", desc, [data])
    writer.journal.record_tag("r", "1", str(index[1].digest))
    assert writer.manifest_digest("r", "1") is None
    assert writer.manifest_digest("r", str(child[1].digest)) is None

    writer.put_blob("r", layer[1], [layer[0]])
    assert writer.manifest_digest("r", "1") == index[1].digest
    writer.close()  # a clean stop: the journal's claims are committed
    again = PackageWriter.open(  # and after a restart, read back from the data files
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=2
    )
    assert again.resumed and again.manifest_digest("r", "1") == index[1].digest


def test_one_wrong_hash_has_every_claim_of_its_data_file_checked(tmp_path):
    blobs = [_blob(bytes([n]) * (n * 1000), "application/octet-stream") for n in range(1, 6)]
    writer = PackageWriter.open(
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=1
    )
    writer.prepare([Item(str(d.digest), d.size, d.media_type) for _, d in blobs])
    for data, desc in blobs:  # recorded smallest first; the layout puts the largest first
        writer.put_blob("r", desc, [data])
    writer.close()
    slots = writer.layout.slots
    damaged = [blobs[0][1], blobs[3][1]]  # the last by place (checked) and one that is not
    with writer.data_path(0).open("r+b") as f:
        for desc in damaged:
            f.seek(slots[str(desc.digest)].data_offset + 10)
            f.write(b"\xff")
    again = PackageWriter.open(
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=1
    )
    assert again.journal.done == {str(d.digest) for _, d in blobs} - {
        str(d.digest) for d in damaged
    }
    lines = again.journal.path.read_text().splitlines()
    assert len(lines) == 1 + 3  # the header and the claims that hold, rewritten
