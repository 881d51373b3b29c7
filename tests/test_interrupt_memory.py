"""Stop mid-copy and resume; big layers stream with bounded memory; chunked uploads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.interrupt import any_blob_in, interrupt_when, layer_digests
from support.verify import assert_image_copied, get_manifest

MB = 1024 * 1024


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("big"))
    _push_big_images(server)
    yield server
    server.stop()


def _push_big_images(server) -> None:
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    layers = [make_layer(f"slow-{i}", 6 * MB, level=0) for i in range(3)]
    manifest, blobs = make_image(layers)
    push_image(client, "big/slow", "1", manifest, blobs)
    huge = make_layer("huge", 160 * MB, level=0)
    manifest, blobs = make_image([huge])
    push_image(client, "big/huge", "1", manifest, blobs)
    client.close()


def test_sigint_stops_cleanly_and_rerun_resumes(big_source, new_registry, cli, tmp_path):
    target = new_registry()
    proxy = FaultProxy(
        big_source.port, lambda m, p, n: Fault(rate=4 * MB) if "/blobs/" in p else None
    )
    layers = [("big/slow", d) for d in layer_digests(big_source.url, "big/slow", "1")]
    try:
        cut = interrupt_when(
            ["copy", "big/slow:1", "--from", proxy.url, "--to", target.url, "-j", "1"],
            tmp_path,
            ready=any_blob_in(target.url, layers),  # one layer is done, another is streaming
        )
    finally:
        proxy.stop()
    out, err = cut.stdout, cut.stderr
    assert cut.returncode == 130, out + err
    assert "Traceback" not in err
    assert get_manifest(target.url, "big/slow", "1") is None  # no tag without its content

    rerun = cli("copy", "big/slow:1", "--from", big_source.url, "--to", target.url, "--json")
    assert rerun.returncode == 0, rerun.output
    doc = rerun.json()
    assert doc["blobs"]["skipped"] >= 1  # finished layers were not sent again
    assert doc["bytes_read"] < 18 * MB
    assert_image_copied(big_source.url, "big/slow", "1", target.url, "big/slow")


def _copy_measuring_rss(args: list[str], cwd) -> tuple[int, int, str]:
    code = (
        "import sys\n"
        "from imageferry.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print('MAXRSS', hwm, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    rss_kb = int(done.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    return done.returncode, rss_kb * 1024, done.stdout + done.stderr


def test_big_layer_streams_with_bounded_memory_monolithic_and_chunked(
    big_source, new_registry, tmp_path
):
    mono, chunked = new_registry(), new_registry()
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: mono\n  registry: {mono.url}\n"
        f"- name: chunked\n  registry: {chunked.url}\n  chunked: true\n"
    )
    for name, server in (("mono", mono), ("chunked", chunked)):
        rc, rss, output = _copy_measuring_rss(
            ["copy", "big/huge:1", "--from", big_source.url, "--to", name], tmp_path
        )
        assert rc == 0, output
        assert rss < 120 * MB, f"{name}: peak RSS {rss / MB:.0f} MB for a 160 MB layer"
        assert_image_copied(big_source.url, "big/huge", "1", server.url, "big/huge")


def test_413_on_monolithic_upload_falls_back_to_chunks(source, new_registry, cli):
    target = new_registry()

    # 413 for monolithic PUTs, as a proxy with a body-size limit answers
    proxy = FaultProxy(target.port)
    seen_patch = []

    def rule(method, path, n):
        if method == "PATCH":
            seen_patch.append(path)
        if method == "PUT" and "/blobs/uploads/" in path and not seen_patch:
            return Fault(status=413)
        return None

    proxy.rule = rule
    try:
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", proxy.url)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert seen_patch
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "demo/app0")
