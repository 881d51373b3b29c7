"""The cache folder is outside input: links in it never make imageferry touch other files."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from imageferry.cache.store import BlobCache
from imageferry.core.digest import Digest
from support.verify import assert_image_copied, get_manifest

OLD = time.time() - 400 * 86400  # older than any keepdays

pytestmark = pytest.mark.skipif(
    not hasattr(os, "symlink") or os.name == "nt", reason="needs symlinks"
)


def _precious(folder: Path, names: list[str]) -> dict[Path, bytes]:
    """Files outside the cache, named like cache entries, old enough to be pruned."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        path = folder / name
        path.write_bytes(b"precious user data " + name.encode())
        os.utime(path, (OLD, OLD))
        out[path] = path.read_bytes()
    return out


def _survived(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        assert path.is_file() and path.read_bytes() == data, f"{path} was touched"


def _store(cache: BlobCache, data: bytes) -> Digest:
    digest = Digest.of_bytes(data)
    temp, out = cache.new_temp()
    out.write(data)
    out.close()
    cache.commit(temp, digest)
    return digest


def test_prune_does_not_follow_links(tmp_path):
    root, outside = tmp_path / "cache", tmp_path / "outside"
    cache = BlobCache(root, keepdays=0, keepsize_gb=0)
    genuine = _store(cache, b"a real cached blob")
    files = _precious(outside / "dir", ["a" * 128, "b" * 64])
    files |= _precious(outside, ["c" * 64, "old.part"])
    # a linked algorithm folder, a linked entry, a linked temp file
    (root / "blobs" / "sha512").symlink_to(outside / "dir", target_is_directory=True)
    (root / "blobs" / "sha256" / ("c" * 64)).symlink_to(outside / ("c" * 64))
    (root / "tmp" / "old.part").symlink_to(outside / "old.part")

    result = cache.prune(now=time.time() + 30 * 86400)

    _survived(files)
    assert result.removed == 1 and cache.lookup(genuine, 18) is None
    assert cache.info().entries == 0


def test_cache_never_writes_through_a_linked_folder(tmp_path):
    root, outside = tmp_path / "cache", tmp_path / "outside"
    outside.mkdir()
    root.mkdir()
    (root / "tmp").symlink_to(outside, target_is_directory=True)
    cache = BlobCache(root)
    with pytest.raises(OSError):
        cache.new_temp()
    (root / "tmp").unlink()
    (root / "blobs").mkdir()
    (root / "blobs" / "sha256").symlink_to(outside, target_is_directory=True)
    _store(cache, b"would land outside")
    assert not list(outside.iterdir())


def test_copy_with_linked_cache_folder_leaves_outside_files(source, new_registry, cli, tmp_path):
    """A copy reads through the cache: a wrong-size 'entry' behind a link is not deleted."""
    manifest = json.loads(get_manifest(source.url, "demo/app0", "1.0") or b"{}")
    hexes = [d["digest"].split(":")[1] for d in [manifest["config"], *manifest["layers"]]]
    outside = tmp_path / "outside"
    files = _precious(outside, hexes)
    (tmp_path / "blobcache" / "blobs").mkdir(parents=True)
    (tmp_path / "blobcache" / "blobs" / "sha256").symlink_to(outside, target_is_directory=True)
    (tmp_path / "cfg.yaml").write_text("cache:\n  pathname: blobcache\n")
    target = new_registry()

    done = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url)

    assert done.returncode == 0, done.output
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "demo/app0")
    _survived(files)
    assert sorted(p.name for p in outside.iterdir()) == sorted(hexes)


def test_cache_info_and_prune_do_not_create_the_folder(cli, tmp_path):
    missing = tmp_path / "nonexistent" / "x"
    info = cli("cache", "info", "--cache", str(missing), "--json")
    assert info.returncode == 0, info.output
    assert info.json()["entries"] == 0
    prune = cli("cache", "prune", "--cache", str(missing))
    assert prune.returncode == 0, prune.output
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_every_verified_algorithm_is_a_cache_entry_and_a_package_entry(tmp_path, algorithm):
    from imageferry.cache.store import BlobCache
    from imageferry.core.digest import Digest
    from imageferry.package.tarfmt import digest_of_name

    data = b"layer" * 100
    digest = Digest.of_bytes(data, algorithm)
    cache = BlobCache(tmp_path / "cache")
    temp, f = cache.new_temp()
    with f:
        f.write(data)
    cache.commit(temp, digest)
    assert cache.lookup(digest, len(data)) is not None
    assert cache.info().entries == 1  # listed, so counted and pruned like the others
    assert digest_of_name(f"blobs/{algorithm}/{digest.hex}") == str(digest)
    assert digest_of_name(f"blobs/{algorithm}/{digest.hex}0") is None  # length belongs to it
