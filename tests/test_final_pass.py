"""Issue 9: a blob that still fails after its requests' retries is put back and tried
again after the rest of the work; its images fail only when that fails too, and the
reason is told once."""

from __future__ import annotations

import json

from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied, get_manifest

SHARED = ["demo/app0:1.0", "demo/app1:1.0", "demo/app2:1.0", "demo/app3:1.0"]


def _base_layer(source) -> str:
    doc = json.loads(get_manifest(source.url, "demo/app0", "1.0") or b"{}")
    return doc["layers"][0]["digest"]


def _refusing(layer: str, times: int | None):
    """Answer 503 to the first ``times`` GETs of ``layer`` (None: to all of them)."""
    count = 0

    def rule(method, path, n):
        nonlocal count
        if method == "GET" and layer in path:
            count += 1
            if times is None or count <= times:
                return Fault(status=503)
        return None

    return rule


def test_a_blob_that_outlives_its_retries_gets_a_final_pass(source, new_registry, cli):
    target = new_registry()
    layer = _base_layer(source)
    proxy = FaultProxy(source.server.port, _refusing(layer, 4))  # 3 attempts, then 1 more
    try:
        result = cli("copy", *SHARED, "--from", proxy.url, "--to", target.url, "--retries", "2")
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    for line in SHARED:
        repo, tag = line.split(":")
        assert_image_copied(source.url, repo, tag, target.url, repo)
    assert proxy.count("GET", layer) == 5


def test_a_blob_that_fails_for_good_is_explained_once(source, new_registry, cli):
    target = new_registry()
    layer = _base_layer(source)
    proxy = FaultProxy(source.server.port, _refusing(layer, None))
    try:
        result = cli(
            "copy", *SHARED, "tools/t0:latest", "--from", proxy.url, "--to", target.url,
            "--retries", "1", "--json",
        )  # fmt: skip
    finally:
        proxy.stop()
    assert result.returncode == 1
    rows = {r["text"]: r for r in result.json()["images"]}
    assert rows["tools/t0:latest"]["status"] == "copied"
    errors = [rows[line]["error"] for line in SHARED]
    assert all(rows[line]["status"] == "failed" for line in SHARED)
    told = [e for e in errors if "HTTP 503" in e]
    assert len(told) == 1 and layer[:19] in told[0], errors
    assert all(f"blob {layer}" in e and "as on line" in e for e in errors if e not in told)
    assert proxy.count("GET", layer) == 5  # 2 attempts, and 3 in the final pass (twice the retries)
