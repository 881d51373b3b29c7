"""Issue 10: what a copy asks the target for each blob, counted at a real registry.

A small blob is probed with a mount from its own repository (one request that
also opens its upload) instead of a HEAD and a POST; a blob uploaded from
byte 0 in this run is not HEADed again after its commit. The counts come from
a proxy in front of the target, not from imageferry.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled
from imageferry.core.manifest import Descriptor
from imageferry.core.retry import RetryPolicy
from imageferry.engine import stops
from imageferry.engine.blobs import BlobMover
from imageferry.engine.locations import Target
from imageferry.engine.plan import BlobJob
from imageferry.engine.stops import Stops
from imageferry.registry import Registry, pieces
from imageferry.registry.pieces import DUE, MOST, SPAN, Pace, Pieces, next_piece
from imageferry.registry.uploadbook import UploadBook
from imageferry.testing.images import DOCKER_LAYER, Blob, Layer, make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied
from test_resume_upload import REPO, SIZE, big_source  # noqa: F401  (the fixture)

MIB = 1024 * 1024


def _push(url: str, images: list[tuple[str, str, list[Layer], str]]) -> set[str]:
    """Push ``(repository, tag, layers, label)`` images; the digests of their blobs."""
    client = Registry(RegistryConfig(registry=url), writable=True)
    digests: set[str] = set()
    try:
        for repo, tag, layers, label in images:
            manifest, blobs = make_image(layers, label=label)
            push_image(client, repo, tag, manifest, blobs)
            digests |= {str(b.digest) for b in blobs}
    finally:
        client.close()
    return digests


def _blob_requests(proxy: FaultProxy) -> dict[str, int]:
    return {
        "HEAD": proxy.count("HEAD", "/blobs/"),
        "POST": proxy.count("POST", "/blobs/uploads/"),
        "mount POST": proxy.count("POST", "mount="),
        "PUT": proxy.count("PUT", "/blobs/uploads/"),
    }


def test_small_blobs_to_an_empty_target_cost_a_probe_and_a_put(new_registry, cli, tmp_path):
    """Three small images, two repositories: per blob one POST (the probe that opens the
    upload) and one PUT; no HEAD of any blob."""
    source, target = new_registry(), new_registry()
    layers = [make_layer(f"small{i}", 100 * 1024) for i in range(3)]
    images = [("small/a", "1", [layers[0]], "1"), ("small/a", "2", [layers[1]], "2")]
    blobs = _push(source.url, [*images, ("small/b", "1", [layers[2]], "3")])
    proxy = FaultProxy(target.port)
    try:
        done = cli(
            "copy", "small/a:1", "small/a:2", "small/b:1", "--from", source.url,
            "--to", proxy.url, "--no-referrers",
        )  # fmt: skip
        assert done.returncode == 0, done.output
        counts = _blob_requests(proxy)
    finally:
        proxy.stop()
    assert counts == {"HEAD": 0, "POST": len(blobs), "mount POST": len(blobs), "PUT": len(blobs)}
    for repo, tag, _, _ in [*images, ("small/b", "1", [], "")]:
        assert_image_copied(source.url, repo, tag, target.url, repo)


def test_a_probed_blob_the_repository_has_is_not_uploaded(new_registry, cli):
    """The probe answers 201 for a blob already there: nothing of it is sent."""
    source, target = new_registry(), new_registry()
    base = make_layer("base", 200 * 1024)
    first = [("small/app", "1", [base], "1")]
    _push(source.url, [*first, ("small/app", "2", [base, make_layer("own", 50 * 1024)], "2")])
    _push(target.url, first)
    proxy = FaultProxy(target.port)
    try:
        done = cli("copy", "small/app:2", "--from", source.url, "--to", proxy.url)
        assert done.returncode == 0, done.output
        counts = _blob_requests(proxy)
    finally:
        proxy.stop()
    # three blobs (base, own, config): base is there, the other two go up
    assert counts == {"HEAD": 0, "POST": 3, "mount POST": 3, "PUT": 2}
    assert_image_copied(source.url, "small/app", "2", target.url, "small/app")


def test_a_big_blob_uploaded_whole_in_this_run_is_not_headed_after(new_registry, cli):
    """A 20 MiB layer goes up in recorded pieces; imageferry verified every byte before the
    last left, so its only HEAD is the one that found it missing."""
    source, target = new_registry(), new_registry()
    data = os.urandom(20 * MIB)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _push(source.url, [("big/one", "1", [Layer(Blob(data, DOCKER_LAYER), digest)], "1")])
    proxy = FaultProxy(target.port)
    try:
        done = cli("copy", "big/one:1", "--from", source.url, "--to", proxy.url)
        assert done.returncode == 0, done.output
        heads = proxy.count("HEAD", f"/blobs/{digest}")
        patches = proxy.count("PATCH", "/blobs/uploads/")
    finally:
        proxy.stop()
    assert (heads, patches >= 1) == (1, True)
    assert_image_copied(source.url, "big/one", "1", target.url, "big/one")
    with urllib.request.urlopen(f"{target.url}/v2/big/one/blobs/{digest}", timeout=60) as resp:
        assert hashlib.sha256(resp.read()).hexdigest() == digest.split(":")[1]


class _Clock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _chunks(count: int) -> list[bytes]:
    return [bytes([k]) * MIB for k in range(count)]


def test_a_piece_from_a_fast_source_is_sent_as_it_arrives_and_grows():
    chunks = _chunks(40)
    pieces = Pieces(chunks)
    body, size, streamed = next_piece(pieces, 8 * MIB, 40 * MIB, 32 * MIB, 1e9, _Clock(0.001))
    assert (size, streamed) == (32 * MIB, True)
    sent = list(body)
    assert b"".join(sent) == b"".join(chunks[:32])
    assert all(a is b for a, b in zip(sent, chunks, strict=False))  # not copied


def test_a_piece_from_a_slow_source_is_read_whole_before_it_is_sent():
    chunks = _chunks(10)
    pieces = Pieces(iter(chunks))
    body, size, streamed = next_piece(pieces, 8 * MIB, 10 * MIB, 32 * MIB, 1e9, _Clock(2 * DUE))
    assert (size, streamed) == (8 * MIB, False)
    assert isinstance(body, list) and len(body) == 8  # read before the request starts
    assert all(a is b for a, b in zip(body, chunks, strict=False))  # not joined


def test_a_first_chunk_that_waited_in_a_buffer_does_not_make_a_slow_source_fast():
    """A source whose first chunk is there at once, the rest at 1 MB/s: the piece does not
    grow, and its request starts only when all but its last DUE seconds were read."""
    now = [0.0]

    def source():
        yield bytes(64 * 1024)  # it waited in the socket's buffer
        while True:
            now[0] += 64 * 1024 / 1_000_000
            yield bytes(64 * 1024)

    body, size, streamed = next_piece(
        Pieces(source()), 8 * MIB, 40 * MIB, 32 * MIB, 1e9, lambda: now[0]
    )
    assert size == 8 * MIB  # not grown to 32 MiB at 1 MB/s
    assert now[0] >= 8 * MIB / 1_000_000 - 2 * DUE  # nearly all of it read before sending
    assert sum(len(c) for c in body) == 8 * MIB


def test_without_a_pace_a_source_is_judged_over_half_the_piece():
    """The first piece to a registry: a fast source streams after half the piece; a pace
    known to be slow (earlier pieces) keeps the piece whole."""
    fast = Pieces(_chunks(40))
    body, size, streamed = next_piece(fast, 8 * MIB, 40 * MIB, 32 * MIB, None, _Clock(0.001))
    assert (size, streamed) == (32 * MIB, True)
    slow = Pace()
    slow.note(8 * MIB, 8.0)  # earlier pieces moved at 1 MiB/s end to end
    body, size, streamed = next_piece(
        Pieces(_chunks(40)), 8 * MIB, 40 * MIB, 32 * MIB, slow.rate, _Clock(0.001)
    )
    assert (size, streamed) == (8 * MIB, False)


def test_pace_sizes_pieces_by_time_between_8_mib_and_the_most():
    pace = Pace()
    assert pace.piece(8 * MIB) == 8 * MIB  # nothing seen yet
    pace.note(8 * MIB, 1.0)  # a slow line
    assert pace.piece(8 * MIB) == 8 * MIB
    pace.note(8 * MIB, 0.008)  # 1 GiB/s
    assert pace.piece(8 * MIB) == min(MOST, int(1024 * MIB * SPAN))
    pace.most = 8 * MIB  # the registry refused a long piece
    assert pace.piece(8 * MIB) == 8 * MIB


def test_a_stop_waits_for_a_held_piece_for_a_bounded_time(monkeypatch):
    cancel = CancelToken()
    check = Stops(cancel)
    now = [100.0]
    monkeypatch.setattr(stops.time, "monotonic", lambda: now[0])
    with check.hold():
        cancel.cancel()
        check.check()  # the piece in flight goes on
        now[0] += stops.GRACE - 0.1
        check.check()
        now[0] += 0.2
        with pytest.raises(Cancelled):  # too long: cut
            check.check()
    check2 = Stops(cancel)
    with check2.hold():
        check2.check()
    with pytest.raises(Cancelled):  # between pieces a stop takes effect at once
        check2.check()


def test_a_registry_that_refuses_a_long_piece_gets_8_mib_ones(
    big_source,  # noqa: F811 (the fixture)
    new_registry,
    tmp_path,
    monkeypatch,
):
    """A 413 on a grown piece (a proxy's body limit) is not the blob's failure: the upload
    goes on in 8 MiB pieces, from what the target holds."""
    source, digest = big_source
    target = new_registry()
    proxy = FaultProxy(
        target.port, lambda m, p, n: Fault(status=413) if m == "PATCH" and n == 1 else None
    )
    monkeypatch.setattr(pieces, "DUE", 1e9)  # every piece is sent as it arrives
    src = Registry(RegistryConfig(registry=source.url))
    dst = Registry(RegistryConfig(registry=proxy.url), writable=True)
    dst.uploads = UploadBook(tmp_path / "uploads.json")
    dst.pace.rate, dst.pace.most = 1e12, 24 * MIB  # pieces of 24 MiB: the blob in two
    desc = Descriptor(DOCKER_LAYER, Digest.parse(digest), SIZE)
    mover = BlobMover(
        src, [Target(dst, dst.host, None)], RetryPolicy(retries=2), CancelToken(), [].append
    )
    try:
        assert mover.run(BlobJob(desc, REPO, [(0, REPO)])) == {}
        patches = proxy.count("PATCH", "/blobs/uploads/")
    finally:
        proxy.stop()
        src.close()
        dst.close()
    assert dst.pace.most == 8 * MIB and patches >= 2
    with urllib.request.urlopen(f"{target.url}/v2/{REPO}/blobs/{digest}", timeout=60) as resp:
        assert hashlib.sha256(resp.read()).hexdigest() == digest.split(":")[1]
