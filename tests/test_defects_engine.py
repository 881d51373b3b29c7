"""Engine defects (issue 16): source errors on a blob, one bad target, duplicates, platforms."""

from __future__ import annotations

import json
import shutil

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.verify import get_manifest

DEAD = "http://127.0.0.1:1"  # nothing listens on port 1 of the loopback


class BrokenSource:
    """A registry with broken/img:1 (one layer's data deleted) and tools/t0:latest."""

    def __init__(self, server) -> None:
        self.server = server
        client = Registry(RegistryConfig(registry=server.url), writable=True)
        self.layer = make_layer("broken-layer", 4096)
        manifest, blobs = make_image([self.layer], label="broken")
        push_image(client, "broken/img", "1", manifest, blobs)
        manifest, blobs = make_image([make_layer("good-layer", 2048)], label="good")
        push_image(client, "tools/t0", "latest", manifest, blobs)
        client.close()
        self.digest = str(self.layer.blob.digest)
        hex_ = self.layer.blob.digest.hex
        self.data = next(server.root.glob(f"data/**/blobs/sha256/{hex_[:2]}/{hex_}/data"))
        self.saved = self.data.with_name("data.keep")

    def break_layer(self) -> None:
        shutil.move(self.data, self.saved)

    def repair(self) -> None:
        shutil.move(self.saved, self.data)


@pytest.fixture
def broken(new_registry) -> BrokenSource:
    src = BrokenSource(new_registry())
    src.break_layer()
    return src


def _by_source(result) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in result.json()["images"]:
        rows.setdefault(r["source"].split("/", 1)[1], []).append(r)
    return rows


# -- 1. a source error on a blob --------------------------------------------------------------


def test_save_fails_the_image_whose_source_blob_is_gone_and_resumes(broken, cli, tmp_path):
    args = ("save", "broken/img:1", "tools/t0:latest", "--from", broken.server.url, "-o", "bk")
    result = cli(*args, "--retries", "0", "--json")
    assert result.returncode == 1, result.output
    rows = _by_source(result)
    bad = rows["broken/img:1"][0]
    assert bad["status"] == "failed"
    assert broken.server.host in bad["error"] and broken.layer.blob.digest.short in bad["error"]
    assert "404" in bad["error"]
    assert rows["tools/t0:latest"][0]["status"] in ("copied", "skipped")
    assert "internal" not in result.output
    assert not list((tmp_path / "bk").glob("*/*_meta.yaml"))
    journals = list((tmp_path / "bk").glob("*/*.journal"))
    records = [json.loads(line) for line in journals[0].read_text().splitlines()[1:]]
    done = {r["done"] for r in records if "done" in r}
    assert done and broken.digest not in done
    assert not any(r["tag"][0] == "broken/img" for r in records if "tag" in r)

    broken.repair()
    again = cli(*args, "--retries", "0", "--json")
    assert again.returncode == 0, again.output
    metas = list((tmp_path / "bk").glob("*/*_meta.yaml"))
    assert len(metas) == 1
    assert broken.digest in metas[0].read_text()


def test_copy_names_the_source_when_its_blob_is_gone(broken, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy",
        "broken/img:1",
        "tools/t0:latest",
        "--from",
        broken.server.url,
        "--to",
        target.url,
        "--retries",
        "0",
        "--json",
    )
    assert result.returncode == 1, result.output
    rows = _by_source(result)
    error = rows["broken/img:1"][0]["error"]
    assert broken.server.host in error and broken.layer.blob.digest.short in error
    assert "MANIFEST_BLOB_UNKNOWN" not in result.output
    assert target.host not in error
    assert rows["tools/t0:latest"][0]["status"] == "copied"
    assert get_manifest(target.url, "broken/img", "1") is None
    assert get_manifest(target.url, "tools/t0", "latest") is not None


def test_copy_source_failing_with_5xx_on_a_blob_fails_that_image(broken, new_registry, cli):
    broken.repair()
    proxy = FaultProxy(broken.server.port)
    proxy.rule = lambda m, p, n: Fault(status=503) if m == "GET" and broken.digest in p else None
    target = new_registry()
    try:
        result = cli(
            "copy",
            "broken/img:1",
            "tools/t0:latest",
            "--from",
            proxy.url,
            "--to",
            target.url,
            "--retries",
            "0",
            "--json",
        )
    finally:
        proxy.stop()
    assert result.returncode == 1, result.output
    rows = _by_source(result)
    error = rows["broken/img:1"][0]["error"]
    assert f"127.0.0.1:{proxy.port}" in error and "503" in error
    assert rows["tools/t0:latest"][0]["status"] == "copied"
