"""Issue 11: signatures, SBOMs and attestations travel with their images.

The distribution registry here has no referrers API, so referrers are written the
way cosign, ORAS and notation write them there (cosign tags, the fallback index);
the API path is covered by a recorded exchange (tests/test_referrers_api.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.core.manifest import Manifest
from imageferry.registry import Registry
from imageferry.testing.images import (
    OCI_LAYER,
    make_image,
    make_index,
    make_layer,
    push_image,
)
from imageferry.testing.registry_server import start_registry
from support.faultproxy import FaultProxy
from support.referrers import (
    ATTESTATION_TYPE,
    NOTATION_TYPE,
    SBOM_TYPE,
    SIMPLESIGNING,
    Pushed,
    attach,
    cosign_signature,
    tag_of,
)
from support.verify import assert_image_copied, get_manifest


@dataclass
class Signed:
    """A source registry with signed images; ``referrers[line]``: what each line carries."""

    url: str
    port: int
    client: Registry
    images: dict[str, Manifest]
    referrers: dict[str, list[Pushed]]
    child_sbom: Pushed  # on the arm64 child of signed/multi:1

    def list_text(self) -> str:
        return "".join(f"{line}\n" for line in self.images)


def build_signed(server) -> Signed:
    """Signed images on ``server``: a plain image with a cosign signature, an SBOM, an
    attestation and a notation signature on the SBOM; an index with an attestation and an
    SBOM on its arm64 child; an image without referrers."""
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    m, b = make_image([make_layer("ref-app", 4096, OCI_LAYER)], oci=True, label="app")
    app = push_image(client, "signed/app", "1", m, b)
    sig = cosign_signature(client, "signed/app", app, f"{server.host}/signed/app")
    sbom = attach(client, "signed/app", app, SBOM_TYPE, b'{"spdxVersion": "SPDX-2.3"}')
    att = attach(client, "signed/app", app, ATTESTATION_TYPE, b'{"_type": "stmt-app"}')
    notation = attach(client, "signed/app", sbom.manifest, NOTATION_TYPE, b"sig-of-sbom")
    children = []
    for arch in ("amd64", "arm64"):
        layer = make_layer(f"ref-multi-{arch}", 2048, OCI_LAYER)
        cm, cb = make_image([layer], oci=True, arch=arch)
        children.append((cm, cb, arch))
    index = make_index([(cm, arch, None) for cm, _, arch in children])
    multi = push_image(client, "signed/multi", "1", index, [], [(cm, cb) for cm, cb, _ in children])
    arm = client.get_manifest("signed/multi", str(children[1][0].digest))
    multi_att = attach(client, "signed/multi", multi, ATTESTATION_TYPE, b'{"_type": "stmt-multi"}')
    child_sbom = attach(client, "signed/multi", arm, SBOM_TYPE, b'{"spdx": "arm64"}')
    pm, pb = make_image([make_layer("ref-plain", 1024, OCI_LAYER)], oci=True, label="plain")
    plain = push_image(client, "plain/none", "1", pm, pb)
    return Signed(
        server.url,
        server.port,
        client,
        {"signed/app:1": app, "signed/multi:1": multi, "plain/none:1": plain},
        {
            "signed/app:1": [sig, sbom, att, notation],
            "signed/multi:1": [multi_att, child_sbom],
            "plain/none:1": [],
        },
        child_sbom,
    )


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    server = start_registry(tmp_path_factory.mktemp("signed"))
    made = build_signed(server)
    yield made
    made.client.close()
    server.stop()


def _fallback_digests(url: str, repo: str, subject: str) -> list[str]:
    raw = get_manifest(url, repo, tag_of(subject))
    return [] if raw is None else [m["digest"] for m in json.loads(raw)["manifests"]]


def assert_referrers_delivered(signed: Signed, target: str, lines=None) -> None:
    """Every referrer byte-identical on ``target``; found there as cosign and ORAS look."""
    for line in lines or signed.images:
        repo = line.split(":")[0]
        assert_image_copied(signed.url, repo, line.split(":")[1], target, repo)
        for ref in signed.referrers[line]:
            assert_image_copied(signed.url, repo, ref.digest, target, repo)
            if ref.tag:  # cosign verify looks the tag up
                assert get_manifest(target, repo, ref.tag) == ref.manifest.raw
                continue
            subject = json.loads(ref.manifest.raw)["subject"]["digest"]
            assert ref.digest in _fallback_digests(target, repo, subject), ref


def test_copy_carries_signatures_sboms_attestations(signed, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text(signed.list_text())
    result = cli("copy", "-l", "list.txt", "--from", signed.url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    doc = result.json()
    assert doc["referrers"] == 6
    by_line = {r["source"].split("/", 1)[1]: r["referrers"] for r in doc["images"]}
    assert by_line == {"signed/app:1": 4, "signed/multi:1": 2, "plain/none:1": 0}
    assert_referrers_delivered(signed, target.url)
    # the fallback index carries what a registry with the API would answer
    raw = get_manifest(target.url, "signed/app", tag_of(str(signed.images["signed/app:1"].digest)))
    entries = {m["artifactType"] for m in json.loads(raw)["manifests"]}
    assert entries == {SBOM_TYPE, ATTESTATION_TYPE}

    again = cli("copy", "-l", "list.txt", "--from", signed.url, "--to", target.url)
    assert again.returncode == 0, again.output
    assert "3 skipped" in again.stdout and "referrers: none" in again.stdout
    assert "0 B read" in again.stdout


def test_summary_counts_referrers(signed, new_registry, cli):
    target = new_registry()
    result = cli("copy", "signed/app:1", "--from", signed.url, "--to", target.url)
    assert result.returncode == 0, result.output
    assert "images: 1 copied; referrers: 4;" in result.stdout
    assert "plan: 1 image(s), 4 referrer(s), " in result.stderr


def test_fallback_index_on_target_keeps_entries_of_others(signed, new_registry, cli):
    target = new_registry()
    client = Registry(RegistryConfig(registry=target.url), writable=True)
    app = signed.images["signed/app:1"]
    m, b = make_image([make_layer("ref-app", 4096, OCI_LAYER)], oci=True, label="app")
    push_image(client, "signed/app", "1", m, b)
    theirs = attach(client, "signed/app", app, "application/vnd.other.scan+json", b"their scan")
    client.close()
    result = cli("copy", "signed/app:1", "--from", signed.url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    assert [r["status"] for r in result.json()["images"]] == ["skipped"]  # image was there
    assert result.json()["referrers"] == 4
    listed = _fallback_digests(target.url, "signed/app", str(app.digest))
    assert listed[0] == theirs.digest  # kept, first, as it was
    assert set(listed) == {
        theirs.digest,
        *(r.digest for r in signed.referrers["signed/app:1"][1:3]),
    }
    assert_referrers_delivered(signed, target.url, ["signed/app:1"])


def test_no_referrers_flag_config_key_and_artifact_type(signed, new_registry, cli, tmp_path):
    app = signed.images["signed/app:1"]
    sig_tag = tag_of(str(app.digest)) + ".sig"
    off = new_registry()
    result = cli("copy", "signed/app:1", "--from", signed.url, "--to", off.url, "--no-referrers")
    assert result.returncode == 0, result.output
    assert get_manifest(off.url, "signed/app", sig_tag) is None
    assert get_manifest(off.url, "signed/app", tag_of(str(app.digest))) is None

    cfg_off = new_registry()
    (tmp_path / "cfg.yaml").write_text(
        f"source:\n- registry: {signed.url}\ntarget:\n- registry: {cfg_off.url}\nreferrers: false\n"
    )
    result = cli("copy", "signed/app:1", "--json")
    assert result.returncode == 0, result.output
    assert result.json()["referrers"] == 0
    assert get_manifest(cfg_off.url, "signed/app", sig_tag) is None
    (tmp_path / "cfg.yaml").unlink()

    only = new_registry()
    result = cli(
        "copy", "signed/app:1", "--from", signed.url, "--to", only.url,
        "--artifact-type", SBOM_TYPE, "--artifact-type", SIMPLESIGNING, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.json()["referrers"] == 2
    sig, sbom = signed.referrers["signed/app:1"][:2]
    assert get_manifest(only.url, "signed/app", sig_tag) == sig.manifest.raw
    assert _fallback_digests(only.url, "signed/app", str(app.digest)) == [sbom.digest]

    bad = cli(
        "copy", "signed/app:1", "--from", signed.url, "--to", only.url, "--artifact-type", "x"
    )
    assert bad.returncode == 2 and "--artifact-type 'x' is not a media type" in bad.output


def test_platform_drops_referrers_of_skipped_children(signed, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy", "signed/multi:1", "--platform", "linux/amd64",
        "--from", signed.url, "--to", target.url, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.json()["referrers"] == 0  # the index was rebuilt: its attestation names the old
    assert get_manifest(target.url, "signed/multi", signed.child_sbom.digest) is None

    both = new_registry()
    result = cli(
        "copy", "signed/multi:1", "--platform", "linux/arm64",
        "--from", signed.url, "--to", both.url, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.output
    assert result.json()["referrers"] == 1  # the arm64 child's SBOM travels with it
    assert get_manifest(both.url, "signed/multi", signed.child_sbom.digest) is not None


def test_no_extra_round_trip_for_images_without_referrers(source, new_registry, cli, tmp_path):
    """Images without referrers cost one tag listing per repository (it answers for the
    fallback and cosign tags of all its images), plus one probe of the API per registry,
    however many planning threads ask at once."""
    proxy = FaultProxy(source.server.port)
    target = new_registry()
    try:
        (tmp_path / "list.txt").write_text(source.list_text())
        result = cli("copy", "-l", "list.txt", "--from", proxy.url, "--to", target.url, "-j", "8")
        assert result.returncode == 0, result.output
        asked = [p for _, p in proxy.log if "/referrers/" in p or "/tags/list" in p]
        repositories = {s.repository for s in source.samples}
        assert len(source.samples) == 12 and len(repositories) == 10
        assert len(asked) == 1 + len(repositories), asked
        assert not [p for _, p in proxy.log if "sha256-" in p]
    finally:
        proxy.stop()


def test_save_load_and_incremental_carry_referrers(new_registry, cli, tmp_path):
    signed = build_signed(new_registry())  # this test signs an image again: its own source
    (tmp_path / "list.txt").write_text(signed.list_text())
    full = cli("save", "-l", "list.txt", "--from", signed.url, "-o", "full", "--json")
    assert full.returncode == 0, full.output
    meta = full.json()["package"]
    text = (tmp_path / meta).read_text()
    assert "version: 2" in text and "referrers:" in text and SIMPLESIGNING in text

    check = cli("check", meta)
    assert check.returncode == 0, check.output
    assert SBOM_TYPE in check.stdout and "cosign .sig" in check.stdout

    target = new_registry()
    load = cli("load", meta, "--to", target.url, "--json")
    assert load.returncode == 0, load.output
    assert load.json()["referrers"] == 6
    assert_referrers_delivered(signed, target.url)

    # signed again after the full package was made: the increment carries the new signature
    app = signed.images["signed/app:1"]
    again = attach(signed.client, "signed/app", app, NOTATION_TYPE, b"signed again")
    inc = cli("save", "-l", "list.txt", "--from", signed.url, "-o", "inc", "--base", meta, "--json")
    assert inc.returncode == 0, inc.output
    inc_meta = inc.json()["package"]
    fresh = new_registry()
    assert cli("load", meta, "--to", fresh.url).returncode == 0
    loaded = cli("load", inc_meta, "--to", fresh.url, "--json")
    assert loaded.returncode == 0, loaded.output
    assert loaded.json()["referrers"] == 1
    assert_image_copied(signed.url, "signed/app", again.digest, fresh.url, "signed/app")
    listed = _fallback_digests(fresh.url, "signed/app", str(app.digest))
    assert again.digest in listed and len(listed) == 3
    assert_referrers_delivered(signed, fresh.url)
    signed.client.close()


def test_check_list_shows_referrers(signed, cli):
    result = cli("check", "signed/app:1", "plain/none:1", "--from", signed.url, "--json")
    assert result.returncode == 0, result.output
    rows = {r["source"].split("/", 1)[1]: r for r in result.json()["images"]}
    assert sorted(rows["signed/app:1"]["referrers"]) == sorted(
        [SBOM_TYPE, ATTESTATION_TYPE, "cosign .sig"]
    )
    assert rows["plain/none:1"]["referrers"] == []


def test_edited_referrer_tag_in_meta_is_refused(signed, new_registry, cli, tmp_path):
    """A meta file may not make load overwrite a tag: a referrer keeps only cosign's tag."""
    saved = cli("save", "signed/app:1", "--from", signed.url, "-o", "pkg", "--json")
    assert saved.returncode == 0, saved.output
    meta = tmp_path / saved.json()["package"]
    text = meta.read_text()
    sig_tag = tag_of(str(signed.images["signed/app:1"].digest)) + ".sig"
    assert f"tag: {sig_tag}" in text
    meta.write_text(text.replace(f"tag: {sig_tag}", "tag: '1'"))
    target = new_registry()
    result = cli("load", str(meta), "--to", target.url)
    assert result.returncode == 2, result.output
    assert "tag '1' is not a cosign tag of its subject" in result.output
    assert get_manifest(target.url, "signed/app", "1") is None

    meta.write_text(text.replace("version: 2", "version: 1"))
    result = cli("check", str(meta))
    assert result.returncode == 2 and "version 1 meta files list no referrers" in result.output


def test_a_fallback_tag_without_an_index_fails_the_image_clearly(new_registry, cli):
    source, target = new_registry(), new_registry()
    client = Registry(RegistryConfig(registry=source.url), writable=True)
    m, b = make_image([make_layer("odd", 1024, OCI_LAYER)], oci=True)
    image = push_image(client, "odd/app", "1", m, b)
    push_image(client, "odd/app", tag_of(str(image.digest)), m, b)  # an image, not an index
    client.close()
    result = cli("copy", "odd/app:1", "--from", source.url, "--to", target.url)
    assert result.returncode == 1, result.output
    assert "should hold a referrers index" in result.output and "Traceback" not in result.output
    again = cli("copy", "odd/app:1", "--from", source.url, "--to", target.url, "--no-referrers")
    assert again.returncode == 0, again.output


def test_no_referrers_in_save_and_load(signed, new_registry, cli, tmp_path):
    saved = cli("save", "signed/app:1", "--from", signed.url, "-o", "pkg", "--json")
    assert saved.returncode == 0, saved.output
    meta = saved.json()["package"]
    target = new_registry()
    loaded = cli("load", meta, "--to", target.url, "--no-referrers", "--json")
    assert loaded.returncode == 0 and loaded.json()["referrers"] == 0, loaded.output
    sig_tag = tag_of(str(signed.images["signed/app:1"].digest)) + ".sig"
    assert get_manifest(target.url, "signed/app", sig_tag) is None

    plain = cli("save", "signed/app:1", "--from", signed.url, "-o", "plain", "--no-referrers",
                "--json")  # fmt: skip
    assert plain.returncode == 0, plain.output
    text = (tmp_path / plain.json()["package"]).read_text()
    assert "version: 1" in text and "referrers" not in text  # older imageferry reads it


def test_referrers_per_image_are_bounded(signed, new_registry, monkeypatch):
    """A source that lists endless referrers (all levels together) fails that image."""
    from imageferry.core.cancel import CancelToken
    from imageferry.core.config import Config
    from imageferry.core.events import ignore_events
    from imageferry.engine import referrers
    from imageferry.jobs.copy import run_copy
    from imageferry.jobs.inputs import parse_list
    from imageferry.jobs.options import transfer_options

    monkeypatch.setattr(referrers, "MAX_PER_IMAGE", 3)
    config, target = Config(), new_registry()
    result = run_copy(
        config,
        parse_list("signed/app:1\nsigned/multi:1\n", "list").entries,
        RegistryConfig(registry=signed.url),
        [RegistryConfig(registry=target.url)],
        transfer_options(config),
        ignore_events,
        CancelToken(),
    )
    rows = {r.source.split("/", 1)[1]: r for r in result.images}
    assert rows["signed/app:1"].status == "failed"
    assert "more than 3 referrers; copy it with --no-referrers" in (
        rows["signed/app:1"].error or ""
    )
    assert rows["signed/multi:1"].status == "copied" and rows["signed/multi:1"].referrers == 2
