"""imageferry copy against real registries: content, idempotence, renames, several targets."""

from __future__ import annotations

from support.verify import assert_image_copied, get_manifest


def test_copy_dozen_images_byte_identical(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text("# release 1\n\n" + source.list_text())
    result = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    doc = result.json()
    assert [r["status"] for r in doc["images"]] == ["copied"] * 12
    for sample in source.samples:
        digest = assert_image_copied(
            source.url, sample.repository, sample.tag, target.url, sample.repository
        )
        assert digest == sample.digest
    assert doc["blobs"]["copied"] > 0 and doc["bytes_read"] > 0

    again = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url, "--json")
    assert again.returncode == 0, again.output
    second = again.json()
    assert [r["status"] for r in second["images"]] == ["skipped"] * 12
    assert second["bytes_read"] == 0 and second["blobs"]["copied"] == 0


def test_shared_layers_move_once_and_mount(source, new_registry, cli):
    target = new_registry()
    apps = [s.line for s in source.samples if s.repository.startswith("demo/app")]
    result = cli("copy", *apps, "--from", source.url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    blobs = result.json()["blobs"]
    # four images: one shared base layer + 4 app layers + 4 configs copied; base mounted 3x
    assert blobs["copied"] == 9
    assert blobs["mounted"] == 3


def test_rename_namespace_rewrite_and_host_replacement(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "cfg.yaml").write_text(
        f"source:\n- name: company\n  registry: {source.url}\n"
        f"target:\n- name: site\n  registry: {target.url}\n  repository: delivered\n"
    )
    (tmp_path / "list.txt").write_text(
        "10.0.0.1:5000/demo/app0:1.0\n"  # host is replaced by the source's
        "tools/t0 -> renamed/tool:2.0   # trailing comment\n"
        "multi/arch:1 -> multi/arch:stable\n"
    )
    result = cli("copy", "-l", "list.txt", "--from", "company", "--to", "site")
    assert result.returncode == 0, result.output
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "delivered/app0")
    assert_image_copied(source.url, "tools/t0", "latest", target.url, "delivered/tool", "2.0")
    assert_image_copied(source.url, "multi/arch", "1", target.url, "delivered/arch", "stable")

    check = cli("check", "-l", "list.txt", "--to", "site")
    assert check.returncode == 0, check.output
    assert f"{target.host}/delivered/tool:2.0" in check.stdout
    assert "has it (same digest)" in check.stdout


def test_copy_to_two_targets_reads_each_blob_once(source, new_registry, cli):
    a, b = new_registry(), new_registry()
    lines = [s.line for s in source.samples]
    result = cli("copy", *lines, "--from", source.url, "--to", a.url, "--to", b.url, "--json")
    assert result.returncode == 0, result.output
    doc = result.json()
    assert len(doc["images"]) == 24
    for sample in source.samples:
        for t in (a, b):
            assert_image_copied(source.url, sample.repository, sample.tag, t.url, sample.repository)
    unique = _unique_blob_bytes(source)
    assert doc["bytes_read"] == unique


def _unique_blob_bytes(source) -> int:
    import json

    sizes: dict[str, int] = {}

    def walk(repo: str, ref: str) -> None:
        doc = json.loads(get_manifest(source.url, repo, ref))
        for child in doc.get("manifests", []):
            walk(repo, child["digest"])
        for blob in [doc.get("config"), *doc.get("layers", [])]:
            if blob:
                sizes[blob["digest"]] = blob["size"]

    for s in source.samples:
        walk(s.repository, s.tag)
    return sum(sizes.values())


def test_platform_filter_pushes_single_manifest(source, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy",
        "multi/arch:1",
        "--from",
        source.url,
        "--to",
        target.url,
        "--platform",
        "linux/arm64",
    )
    assert result.returncode == 0, result.output
    import json

    index = json.loads(get_manifest(source.url, "multi/arch", "1"))
    arm = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    pushed = get_manifest(target.url, "multi/arch", "1")
    assert pushed == get_manifest(source.url, "multi/arch", arm["digest"])

    missing = cli(
        "copy",
        "multi/arch:1",
        "--from",
        source.url,
        "--to",
        target.url,
        "--platform",
        "windows/amd64",
    )
    assert missing.returncode == 1
    assert "no manifest for platform windows/amd64" in missing.output
    assert "linux/arm64/v8" in missing.output


def test_digest_reference_and_missing_image(source, new_registry, cli):
    target = new_registry()
    sample = source.samples[0]
    result = cli(
        "copy",
        f"{sample.repository}@{sample.digest}",
        "demo/nothere:1",
        "--from",
        source.url,
        "--to",
        target.url,
    )
    assert result.returncode == 1
    assert get_manifest(target.url, sample.repository, sample.digest) is not None
    assert "demo/nothere:1" in result.output and "404" in result.output
    assert "rerun with these lines" in result.stdout


def test_bad_list_is_refused_with_line_numbers(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text("demo/app0:1.0\nDemo/App:1\n\nfoo:bad tag\nx -> y -> z\n")
    result = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url)
    assert result.returncode == 2
    assert "list.txt, line 2" in result.stderr and "lower case" in result.stderr
    assert "line 4" in result.stderr and "line 5" in result.stderr
    assert "Traceback" not in result.output
    assert get_manifest(target.url, "demo/app0", "1.0") is None  # nothing started


def test_two_lines_same_target_refused(source, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy",
        "demo/app0:1.0 -> x/y:1",
        "demo/app1:1.0 -> x/y:1",
        "--from",
        source.url,
        "--to",
        target.url,
    )
    assert result.returncode == 2
    assert "lines 1 and 2 both write" in result.stderr


def test_list_from_stdin_and_check_missing(source, cli):
    result = cli("check", "--from", source.url, input="demo/app0:1.0\ndemo/absent:1\n")
    assert result.returncode == 1
    assert "line 1:" in result.stdout and "found sha256:" in result.stdout
    assert "line 2:" in result.stdout and "MISSING" in result.stdout
    assert "2 image(s), 1 found, 1 missing" in result.stdout


def test_shards_split_the_list_between_machines(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text(source.list_text())
    done = []
    for i in (1, 2, 3):
        result = cli(
            "copy",
            "-l",
            "list.txt",
            "--from",
            source.url,
            "--to",
            target.url,
            "--shard",
            f"{i}/3",
            "--json",
        )
        assert result.returncode == 0, result.output
        done += [r["source"] for r in result.json()["images"]]
    assert sorted(done) == sorted(f"{source.server.host}/{s.line}" for s in source.samples)
    bad = cli("check", "-l", "list.txt", "--from", source.url, "--shard", "4/3")
    assert bad.returncode == 2 and "1 <= i <= n" in bad.stderr


def test_copy_within_one_registry_mounts_instead_of_moving_bytes(source, new_registry, cli):
    registry = new_registry()
    seeded = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", registry.url)
    assert seeded.returncode == 0, seeded.output
    result = cli(
        "copy",
        "demo/app0:1.0 -> release/app0:1.0",
        "--from",
        registry.url,
        "--to",
        registry.url,
        "--json",
    )
    assert result.returncode == 0, result.output
    doc = result.json()
    assert doc["bytes_read"] == 0 and doc["blobs"]["mounted"] == 3
    assert_image_copied(registry.url, "demo/app0", "1.0", registry.url, "release/app0")
