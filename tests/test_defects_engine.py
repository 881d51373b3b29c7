"""Engine defects (issue 16): source errors on a blob, one bad target, duplicates, platforms."""

from __future__ import annotations

import json
import shutil
import socket
import threading

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from imageferry.testing.registry_server import htpasswd_auth
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied, get_manifest

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


# -- 2. one bad target ------------------------------------------------------------------------

TOOLS = ["tools/t0:latest", "tools/t1:latest", "demo/app0:1.0"]


def _assert_delivered(source, target, lines: list[str]) -> None:
    for line in lines:
        repo, tag = line.split(":")
        assert_image_copied(source.url, repo, tag, target.url, repo)


def _split_by_target(result) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in result.json()["images"]:
        rows.setdefault(r["target_name"], []).append(r)
    return rows


def test_copy_unreachable_target_does_not_block_the_other(source, new_registry, cli, tmp_path):
    good = new_registry()
    (tmp_path / "list").write_text("\n".join(TOOLS) + "\n")
    result = cli(
        "copy", "-l", "list", "--from", source.url, "--to", good.url, "--to", DEAD,
        "--retries", "0", "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.output
    rows = _split_by_target(result)
    assert [r["status"] for r in rows[good.host]] == ["copied"] * 3
    assert [r["status"] for r in rows["127.0.0.1:1"]] == ["failed"] * 3
    assert all("127.0.0.1:1" in r["error"] for r in rows["127.0.0.1:1"])
    assert "127.0.0.1:1: 0 of 3 image(s) delivered" in (tmp_path / "imageferry.log").read_text()
    _assert_delivered(source, good, TOOLS)


class SlammingDoor:
    """A loopback port that accepts connections and closes them at once, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_unreachable_target_is_not_asked_again_for_every_image(source, new_registry, cli):
    good, door = new_registry(), SlammingDoor()
    door_host = door.url.split("//")[1]
    try:
        result = cli(
            "copy", *TOOLS, "--from", source.url, "--to", good.url, "--to", door.url,
            "-j", "1", "--retries", "1", "--json",
        )  # fmt: skip
    finally:
        door.close()
    assert result.returncode == 1, result.output
    rows = _split_by_target(result)
    assert [r["status"] for r in rows[good.host]] == ["copied"] * 3
    assert [r["status"] for r in rows[door_host]] == ["failed"] * 3
    assert door.connections == 2  # the first image's attempt and its one retry; then no more


def test_copy_wrong_password_on_one_target_only_fails_there(source, new_registry, cli, tmp_path):
    good = new_registry()
    locked = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", "right-Pa55"))
    (tmp_path / "cfg.yaml").write_text(
        f"source:\n- registry: {source.url}\n"
        f"target:\n- name: good\n  registry: {good.url}\n"
        f"- name: locked\n  registry: {locked.url}\n  user: admin\n  password: wrong-Pa55\n"
    )
    result = cli("copy", *TOOLS, "--to", "good", "--to", "locked", "--retries", "0", "--json")
    assert result.returncode == 1, result.output
    rows = _split_by_target(result)
    assert [r["status"] for r in rows["good"]] == ["copied"] * 3
    assert [r["status"] for r in rows["locked"]] == ["failed"] * 3
    assert all("401" in r["error"] for r in rows["locked"])
    assert "wrong-Pa55" not in result.output
    _assert_delivered(source, good, TOOLS)


def test_load_to_two_targets_one_unreachable(source, new_registry, cli, tmp_path):
    saved = cli("save", *TOOLS, "--from", source.url, "-o", "pkg")
    assert saved.returncode == 0, saved.output
    meta = next((tmp_path / "pkg").glob("*/*_meta.yaml"))
    good = new_registry()
    result = cli("load", str(meta), "--to", DEAD, "--to", good.url, "--retries", "0", "--json")
    assert result.returncode == 1, result.output
    rows = _split_by_target(result)
    assert [r["status"] for r in rows[good.host]] == ["copied"] * 3
    assert [r["status"] for r in rows["127.0.0.1:1"]] == ["failed"] * 3
    _assert_delivered(source, good, TOOLS)


# -- 3. duplicates ----------------------------------------------------------------------------


def test_identical_lines_are_one_delivery(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list").write_text("tools/t0:latest\ntools/t1:latest\ntools/t0:latest\n")
    result = cli("copy", "-l", "list", "--from", source.url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    images = result.json()["images"]
    assert [(r["line"], r["status"]) for r in images] == [(1, "copied"), (2, "copied")]
    assert result.json()["blobs"]["copied"] == 4  # config + layer of each image, once
    _assert_delivered(source, target, ["tools/t0:latest", "tools/t1:latest"])


def test_the_same_target_twice_is_delivered_once(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "cfg.yaml").write_text(
        f"source:\n- registry: {source.url}\ntarget:\n- name: site\n  registry: {target.url}\n"
    )
    result = cli("copy", "tools/t0:latest", "--to", "site", "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    doc = result.json()
    assert [r["status"] for r in doc["images"]] == ["copied"]
    assert doc["blobs"]["copied"] == 2 and doc["blobs"].get("skipped", 0) == 0
    _assert_delivered(source, target, ["tools/t0:latest"])


# -- 4. --platform on a single-platform image -------------------------------------------------


def test_platform_on_a_single_platform_image(source, new_registry, cli):
    target = new_registry()
    args = ("copy", "tools/t0:latest", "--from", source.url, "--to", target.url, "--json")
    wrong = cli(*args, "--platform", "linux/s390x")
    assert wrong.returncode == 1, wrong.output
    (row,) = wrong.json()["images"]
    assert row["status"] == "failed"
    assert "linux/s390x" in row["error"] and "it has: linux/amd64" in row["error"]
    assert get_manifest(target.url, "tools/t0", "latest") is None

    right = cli(*args, "--platform", "linux/amd64")
    assert right.returncode == 0, right.output
    assert [r["status"] for r in right.json()["images"]] == ["copied"]
    _assert_delivered(source, target, ["tools/t0:latest"])


def test_platform_on_an_artifact_names_no_platform(source, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy", "artifacts/sbom:1", "--from", source.url, "--to", target.url,
        "--platform", "linux/amd64", "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.output
    assert "it has: none" in result.json()["images"][0]["error"]


def test_incremental_load_with_one_unreachable_target(source, new_registry, cli, tmp_path):
    lines = TOOLS[:2]
    full = cli("save", *lines, "--from", source.url, "-o", "full")
    assert full.returncode == 0, full.output
    full_meta = next((tmp_path / "full").glob("*/*_meta.yaml"))
    inc = cli("save", *lines, "--from", source.url, "-o", "inc", "--base", str(full_meta))
    assert inc.returncode == 0, inc.output
    inc_meta = next((tmp_path / "inc").glob("*/*_meta.yaml"))
    good = new_registry()
    assert cli("load", str(full_meta), "--to", good.url).returncode == 0

    result = cli("load", str(inc_meta), "--to", good.url, "--to", DEAD, "--retries", "0", "--json")
    assert result.returncode == 1, result.output
    rows = _split_by_target(result)
    assert [r["status"] for r in rows[good.host]] == ["skipped"] * 2
    assert [r["status"] for r in rows["127.0.0.1:1"]] == ["failed"] * 2
    assert all("127.0.0.1:1" in r["error"] for r in rows["127.0.0.1:1"])
