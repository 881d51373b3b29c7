"""Issue 9: no run lost to a transient fault.

Fifteen images sharing base layers are copied through loopback proxies that
inject the fault mix (resets on GET and PUT, 503 in bursts of two, 429 with
Retry-After) into both the source and the target, twenty runs in a row per
retry setting. Every run must end with exit status "ok" and targets whose
manifests are byte-identical to the source's.
"""

from __future__ import annotations

import json

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.events import Event, Message
from imageferry.core.retry import RetryPolicy
from imageferry.jobs.copy import run_copy
from imageferry.jobs.inputs import parse_list
from imageferry.jobs.options import TransferOptions
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from imageferry.testing.registry_server import start_registry
from support.faultmix import FaultMix
from support.faultproxy import FaultProxy
from support.verify import blob_exists, get_manifest

RUNS = 20
# Backoff and Retry-After are honoured, but capped small so forty runs fit in a minute.
FAST = {"base_delay": 0.005, "max_delay": 0.02}


@pytest.fixture(scope="module")
def shared_source(tmp_path_factory):
    """Fifteen images in five repositories: two base layers shared by all, one by some."""
    server = start_registry(tmp_path_factory.mktemp("mix-source"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    base = make_layer("mix-base", 24 * 1024)
    runtime = make_layer("mix-runtime", 12 * 1024)
    extra = make_layer("mix-extra", 8 * 1024)
    lines = []
    for i in range(15):
        app = make_layer(f"mix-app-{i}", 2048 + i)
        layers = [base, runtime, app] if i % 3 else [base, runtime, extra, app]
        manifest, blobs = make_image(layers, label=f"mix{i}")
        repo, tag = f"mix/app{i % 5}", f"v{i}"
        push_image(client, repo, tag, manifest, blobs)
        lines.append(f"{repo}:{tag}")
    client.close()
    yield server, lines
    server.stop()


def copy_once(
    src: FaultProxy, dst: FaultProxy, lines, namespace: str, retries: int, seed: str
) -> list[FaultMix]:
    """One in-process copy through the proxies, each with its own seeded fault mix."""
    mixes = [FaultMix(f"{seed}-src"), FaultMix(f"{seed}-dst")]
    src.rule, dst.rule = mixes
    events: list[Event] = []
    result = run_copy(
        Config(),
        parse_list("\n".join(lines), "list").entries,
        RegistryConfig(registry=src.url),
        [RegistryConfig(registry=dst.url, repository=namespace)],
        TransferOptions(workers=8, policy=RetryPolicy(retries=retries, **FAST)),
        events.append,
        CancelToken(),
    )
    failed = [(r.source, r.error) for r in result.images if r.status != "copied"]
    said = [e.text for e in events if isinstance(e, Message) and e.level == "error"]
    assert result.ok and not failed, f"seed {seed}: {failed} {said}"
    return mixes


def _assert_identical(source, target, lines, namespace: str) -> None:
    """Manifests byte-identical under the same tag; every blob there, in its repository."""
    for line in lines:
        repo, tag = line.split(":")
        want = get_manifest(source.url, repo, tag)
        there = f"{namespace}/{repo.split('/', 1)[1]}"
        assert want is not None and get_manifest(target.url, there, tag) == want, there
        doc = json.loads(want)
        for blob in [doc["config"], *doc["layers"]]:
            assert blob_exists(target.url, there, blob["digest"]), f"{there}: {blob['digest']}"


@pytest.mark.parametrize("retries", [5, 2])
def test_fault_mix_twenty_runs_in_a_row(shared_source, new_registry, retries):
    source, lines = shared_source
    target = new_registry()
    src, dst = FaultProxy(source.port), FaultProxy(target.port)
    injected = 0
    try:
        for run in range(RUNS):
            namespace = f"run{run}"
            mixes = copy_once(src, dst, lines, namespace, retries, f"r{retries}-{run}")
            injected += sum(sum(mix.faults.values()) for mix in mixes)
            _assert_identical(source, target, lines, namespace)
    finally:
        src.stop()
        dst.stop()
    assert injected > 5 * RUNS  # the mix did bite
