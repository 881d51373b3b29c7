"""Issue 9: a stalled upstream costs a retry, not a hung run; a stream broken
mid-blob resumes with a Range GET instead of starting over."""

from __future__ import annotations

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from imageferry.testing.registry_server import start_registry
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied

MB = 1024 * 1024


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    """One image with a 3 MiB layer (several chunks of a stream)."""
    server = start_registry(tmp_path_factory.mktemp("stall-source"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    manifest, blobs = make_image([make_layer("stall-big", 3 * MB, level=0)])
    push_image(client, "big/one", "1", manifest, blobs)
    client.close()
    yield server, str(blobs[-1].digest)
    server.stop()


def _copy(cli, tmp_path, src_url: str, dst_url: str, *extra: str):
    (tmp_path / "cfg.yaml").write_text("timeout: 1\nretries: 2\n")
    return cli("copy", "big/one:1", "--from", src_url, "--to", dst_url, "--json", *extra)


def test_stalled_upstream_is_dropped_and_the_run_completes(big_source, new_registry, cli, tmp_path):
    server, layer = big_source
    target = new_registry()

    seen: set[str] = set()

    def stalls(method, path, n):  # headers, then nothing: the manifest's and the layer's
        kind = "layer" if layer in path else "manifest" if "/manifests/" in path else None
        if method == "GET" and kind and kind not in seen:
            seen.add(kind)
            return Fault(stall=60)
        return None

    proxy = FaultProxy(server.port, stalls)
    try:
        result = _copy(cli, tmp_path, proxy.url, target.url)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert result.json()["images"][0]["status"] == "copied"
    assert_image_copied(server.url, "big/one", "1", target.url, "big/one")
    assert proxy.count("GET", "/manifests/") >= 2 and proxy.count("GET", layer) >= 2


def test_a_stream_broken_mid_blob_resumes_with_a_range_get(big_source, new_registry, cli, tmp_path):
    server, layer = big_source
    target = new_registry()

    fractions = [0.4, 0.9]

    def breaks(method, path, n):  # the layer breaks twice, at 40% and then at 90%
        if method == "GET" and layer in path and fractions:
            return Fault(reset_fraction=fractions.pop(0), rate=16 * MB)
        return None

    proxy = FaultProxy(server.port, breaks)
    try:
        result = _copy(cli, tmp_path, proxy.url, target.url)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert_image_copied(server.url, "big/one", "1", target.url, "big/one")
    assert proxy.count("GET", layer) == 3
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in proxy.ranges]
    # a reset may drop what the client had not read yet, but what it had is not asked again
    assert starts and all(a > 0 for a in starts) and starts == sorted(set(starts))
    assert starts[-1] >= 2 * MB, proxy.ranges
