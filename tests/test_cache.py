"""The local blob cache: read-through for copy and save, limits, corruption, sharing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.faultproxy import FaultProxy
from support.verify import assert_image_copied


@pytest.fixture
def counted_source(source):
    proxy = FaultProxy(source.server.port)
    yield proxy
    proxy.stop()


def _cfg(tmp_path: Path, extra: str = "") -> None:
    (tmp_path / "cfg.yaml").write_text(f"cache:\n  pathname: blobcache\n{extra}")


def _entries(folder: Path) -> list[Path]:
    return sorted((folder / "blobs").glob("*/*"))


def test_second_save_and_copy_read_nothing_from_source(
    source, counted_source, new_registry, cli, tmp_path
):
    _cfg(tmp_path)
    (tmp_path / "list.txt").write_text(source.list_text())
    first = cli("save", "-l", "list.txt", "--from", counted_source.url, "-o", "one")
    assert first.returncode == 0, first.output
    fetched = counted_source.count("GET", "/blobs/")
    assert fetched > 0
    entries = _entries(tmp_path / "blobcache")
    assert len(entries) == fetched
    for entry in entries:  # every entry is verified content under its digest
        assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.name

    second = cli("save", "-l", "list.txt", "--from", counted_source.url, "-o", "two")
    assert second.returncode == 0, second.output
    assert counted_source.count("GET", "/blobs/") == fetched

    target = new_registry()
    copied = cli("copy", "-l", "list.txt", "--from", counted_source.url, "--to", target.url)
    assert copied.returncode == 0, copied.output
    assert counted_source.count("GET", "/blobs/") == fetched
    for s in source.samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)

    no_cache = cli(
        "copy",
        "tools/t0:latest",
        "--from",
        counted_source.url,
        "--to",
        new_registry().url,
        "--no-cache",
    )
    assert no_cache.returncode == 0
    assert counted_source.count("GET", "/blobs/") > fetched


def test_copy_to_two_targets_reads_each_blob_once(source, counted_source, new_registry, cli):
    a, b = new_registry(), new_registry()
    result = cli(
        "copy",
        *[s.line for s in source.samples],
        "--from",
        counted_source.url,
        "--to",
        a.url,
        "--to",
        b.url,
    )
    assert result.returncode == 0, result.output
    gets = [p for m, p in counted_source.log if m == "GET" and "/blobs/" in p]
    digests = [p.rsplit("/", 1)[1] for p in gets]
    assert len(digests) == len(set(digests))


def test_corrupt_entry_is_refetched_never_pushed(
    source, counted_source, new_registry, cli, tmp_path
):
    _cfg(tmp_path)
    warm = cli("copy", "demo/app0:1.0", "--from", counted_source.url, "--to", new_registry().url)
    assert warm.returncode == 0, warm.output
    entries = _entries(tmp_path / "blobcache")
    victim = max(entries, key=lambda p: p.stat().st_size)
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    before = counted_source.count("GET", "/blobs/")

    target = new_registry()
    result = cli("copy", "demo/app0:1.0", "--from", counted_source.url, "--to", target.url)
    assert result.returncode == 0, result.output
    assert "cached copy of blob" in result.output and "corrupt" in result.output
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "demo/app0")
    assert counted_source.count("GET", "/blobs/") == before + 1
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name

    victim.write_bytes(victim.read_bytes()[:100])  # truncated: found by size, fetched again
    again = cli("copy", "demo/app0:1.0", "--from", counted_source.url, "--to", new_registry().url)
    assert again.returncode == 0, again.output
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == victim.name


def test_eviction_by_age_and_size(source, counted_source, cli, tmp_path):
    _cfg(tmp_path, "  keepdays: 2\n  keepsize: 10\n")
    (tmp_path / "list.txt").write_text(source.list_text())
    saved = cli(
        "save",
        "-l",
        "list.txt",
        "--from",
        counted_source.url,
        "-o",
        "p",
        "--cache",
        "big",
        "--json",
    )
    assert saved.returncode == 0
    cache = tmp_path / "big"
    entries = _entries(cache)
    total = sum(p.stat().st_size for p in entries)
    assert total > 200_000
    _cfg(tmp_path, "  keepdays: 2\n  keepsize: 0.0002\n")  # 200 kB

    old = time.time() - 3 * 86400
    aged = entries[:5]
    for p in aged:
        os.utime(p, (old, old))
    info = cli("cache", "info", "--cache", "big")
    assert info.returncode == 0 and f"{len(entries)} blob(s)" in info.stdout

    pruned = cli("cache", "prune", "--cache", "big", "--json")
    assert pruned.returncode == 0, pruned.output
    left = _entries(cache)
    assert not any(p.exists() for p in aged)
    assert sum(p.stat().st_size for p in left) <= 200_000
    assert pruned.json()["removed"] == len(entries) - len(left)

    # a run applies the limits too, before and after
    again = cli("save", "-l", "list.txt", "--from", counted_source.url, "-o", "q")
    assert again.returncode == 0, again.output
    assert sum(p.stat().st_size for p in _entries(tmp_path / "blobcache")) <= 200_000
    info = cli("cache", "info", "-c", "cfg.yaml")
    assert info.returncode == 0 and "blobcache" in info.stdout


def test_two_processes_share_one_cache(source, new_registry, tmp_path):
    _cfg(tmp_path)
    (tmp_path / "list.txt").write_text(source.list_text())
    a, b = new_registry(), new_registry()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imageferry",
                "copy",
                "-l",
                "list.txt",
                "--from",
                source.url,
                "--to",
                t.url,
                "-j",
                "4",
                "--log",
                f"{i}.log",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, t in enumerate((a, b))
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for t in (a, b):
        for s in source.samples:
            assert_image_copied(source.url, s.repository, s.tag, t.url, s.repository)
    for entry in _entries(tmp_path / "blobcache"):
        assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.name
    assert not [
        p
        for d in ("tmp", "partial")
        if (tmp_path / "blobcache" / d).is_dir()
        for p in (tmp_path / "blobcache" / d).iterdir()
    ]


def test_prune_spares_blobs_in_use(tmp_path):
    from imageferry.cache.store import BlobCache
    from imageferry.core.digest import Digest

    cache = BlobCache(tmp_path / "c", keepdays=0, keepsize_gb=0)
    data = b"layer bytes"
    digest = Digest.of_bytes(data)
    temp, out = cache.new_temp()
    out.write(data)
    out.close()
    cache.commit(temp, digest)
    with cache.using(digest):
        assert cache.prune().removed == 0
        assert cache.lookup(digest, len(data)) is not None
    assert cache.prune().removed == 1
    assert cache.lookup(digest, len(data)) is None
