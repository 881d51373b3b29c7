"""Resume inside a layer across runs (issue 14): a stopped copy continues where it stopped.

A ~48 MB layer is copied from a throttled source to a target, each behind a
proxy that counts the body bytes it forwards; the copy is stopped at about
half (Ctrl-C, kill -9), then rerun. The proxies, not imageferry, say how
much moved on the rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import Cancelled
from imageferry.core.events import BlobProgress, Message
from imageferry.core.manifest import Descriptor
from imageferry.core.retry import RetryPolicy
from imageferry.engine.blobs import BlobMover
from imageferry.engine.locations import Target
from imageferry.engine.plan import BlobJob
from imageferry.registry import Registry
from imageferry.registry.uploadbook import UploadBook
from imageferry.testing.images import DOCKER_LAYER, Blob, Layer, make_image, push_image
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied

SIZE = 48 * 1024 * 1024
REPO = "big/layer"
BOOK = ".imageferry-uploads.json"


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("bigsource"))
    data = os.urandom(SIZE)
    layer = Layer(Blob(data, DOCKER_LAYER), "sha256:" + hashlib.sha256(data).hexdigest())
    manifest, blobs = make_image([layer], label="big")
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    push_image(client, REPO, "1", manifest, blobs)
    client.close()
    yield server, str(layer.blob.digest)
    server.stop()


class Line:
    """A throttled source proxy and a counting target proxy."""

    def __init__(
        self,
        source,
        target,
        rate: int = 12_000_000,
        strip: tuple[str, ...] = (),
        slow_target: bool = False,
    ):
        self.rate: int | None = rate

        def slow(method: str, path: str, n: int) -> Fault | None:
            if method == "GET" and "/blobs/sha256:" in path and not slow_target:
                return Fault(rate=self.rate, strip=strip)
            return None

        def slow_upload(method: str, path: str, n: int) -> Fault | None:
            if method == "PATCH" and slow_target and self.rate:
                return Fault(rate=self.rate)
            return None

        self.src = FaultProxy(source.port, slow)
        self.dst = FaultProxy(target.port, slow_upload)

    def counts(self) -> tuple[int, int]:
        """Bytes read from the source, bytes uploaded (in pieces, or whole in a PUT)."""
        up = self.dst.sent_up
        return self.src.sent_down.get("GET", 0), up.get("PATCH", 0) + up.get("PUT", 0)

    def stop(self) -> None:
        self.src.stop()
        self.dst.stop()


def _args(line: Line) -> list[str]:
    return [sys.executable, "-m", "imageferry", "copy", f"{REPO}:1", "--from", line.src.url]


def _start(cwd: Path, line: Line) -> subprocess.Popen:
    cmd = [*_args(line), "--to", line.dst.url, "--retries", "2"]
    env = {**os.environ, "HOME": str(cwd / "home")}
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _held(cwd: Path) -> int:
    try:
        uploads = json.loads((cwd / BOOK).read_text())["uploads"]
    except (OSError, ValueError, KeyError):
        return 0
    return max((u["offset"] for u in uploads.values()), default=0)


def _stop_at_half(cwd: Path, line: Line, how: str) -> None:
    proc = _start(cwd, line)
    deadline = time.monotonic() + 60
    try:
        while _held(cwd) < SIZE * 0.45:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the upload did not get to half"
            time.sleep(0.02)
    finally:
        if how == "SIGINT":
            proc.send_signal(signal.SIGINT)
        else:
            proc.kill()
        proc.communicate(timeout=60)
    assert SIZE * 0.45 <= _held(cwd) < SIZE, "stopped too late to show a resume"


def _rerun(cwd: Path, line: Line) -> tuple[int, int, str]:
    line.rate = None
    before = line.counts()
    proc = _start(cwd, line)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    after = line.counts()
    return after[0] - before[0], after[1] - before[1], err


def _assert_identical(source, target, digest: str) -> None:
    assert_image_copied(source.url, REPO, "1", target.url, REPO)
    url = f"{target.url}/v2/{REPO}/blobs/{digest}"
    with urllib.request.urlopen(url, timeout=60) as resp:
        got = hashlib.sha256(resp.read()).hexdigest()
    assert "sha256:" + got == digest


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_stopped_copy_moves_only_the_rest(big_source, new_registry, tmp_path, how):
    source, digest = big_source
    target = new_registry()
    line = Line(source, target)
    try:
        _stop_at_half(tmp_path, line, how)
        read, sent, err = _rerun(tmp_path, line)
    finally:
        line.stop()
    assert read <= SIZE * 0.6, f"the rerun read {read} of {SIZE} bytes from the source"
    assert sent <= SIZE * 0.6, f"the rerun uploaded {sent} of {SIZE} bytes"
    print(f"{how}: rerun read {read / SIZE:.0%} from the source, uploaded {sent / SIZE:.0%}")
    _assert_identical(source, target, digest)
    assert not (tmp_path / BOOK).exists()


def test_killed_while_sending_to_a_slow_target_still_ends_correct(
    big_source, new_registry, tmp_path
):
    """The registry refuses a session whose PATCH was cut (docs/resume.md, Limits): the
    rerun may have to start anew, but it ends with the right blob."""
    source, digest = big_source
    target = new_registry()
    line = Line(source, target, slow_target=True)
    try:
        _stop_at_half(tmp_path, line, "SIGKILL")
        read, sent, _ = _rerun(tmp_path, line)
    finally:
        line.stop()
    print(f"kill -9 on a slow target: rerun read {read / SIZE:.0%}, uploaded {sent / SIZE:.0%}")
    _assert_identical(source, target, digest)
    assert not (tmp_path / BOOK).exists()


def _set_location(cwd: Path, location: str, offset: int | None = None) -> None:
    data = json.loads((cwd / BOOK).read_text())
    for entry in data["uploads"].values():
        entry["location"] = location
        if offset is not None:
            entry["offset"] = offset
    (cwd / BOOK).write_text(json.dumps(data))


def test_a_forgotten_upload_session_starts_anew(big_source, new_registry, tmp_path):
    source, digest = big_source
    target = new_registry()
    line = Line(source, target)
    try:
        _stop_at_half(tmp_path, line, "SIGINT")
        (entry,) = json.loads((tmp_path / BOOK).read_text())["uploads"].values()
        bogus = entry["location"].replace("/uploads/", "/uploads/0000")
        _set_location(tmp_path, bogus)
        read, sent, _ = _rerun(tmp_path, line)
    finally:
        line.stop()
    assert sent >= SIZE  # nothing could be continued
    _assert_identical(source, target, digest)


def test_a_source_without_range_is_read_whole_once(big_source, new_registry, tmp_path):
    source, digest = big_source
    target = new_registry()
    line = Line(source, target, strip=("Range",))
    try:
        _stop_at_half(tmp_path, line, "SIGINT")
        read, sent, err = _rerun(tmp_path, line)
    finally:
        line.stop()
    assert read >= SIZE  # the source ignores Range: a full read
    assert sent <= SIZE * 0.6  # but the target holds the first half already
    assert err.count("reading it from the start") == 1, err
    _assert_identical(source, target, digest)


def test_wrong_bytes_in_the_session_are_thrown_away(big_source, new_registry, tmp_path):
    """A session holding wrong bytes: the target refuses the digest; one fresh upload."""
    source, digest = big_source
    target = new_registry()
    line = Line(source, target)
    try:
        _stop_at_half(tmp_path, line, "SIGINT")
        location, offset = _tampered_session(target.url, _held(tmp_path))
        _set_location(tmp_path, location.replace(target.url, line.dst.url), offset)
        read, sent, _ = _rerun(tmp_path, line)
    finally:
        line.stop()
    assert sent >= SIZE
    _assert_identical(source, target, digest)


def _tampered_session(base: str, size: int) -> tuple[str, int]:
    """A new upload on the target holding ``size`` random bytes (not the layer's)."""
    post = urllib.request.Request(f"{base}/v2/{REPO}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(post, timeout=30) as resp:
        location = resp.headers["Location"]
    patch = urllib.request.Request(
        location,
        data=os.urandom(size),
        method="PATCH",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(patch, timeout=60) as resp:
        return resp.headers["Location"], size


def test_progress_counts_what_the_target_holds_as_done(big_source, new_registry, tmp_path):
    """In process: a stopped run, then a run whose first progress is the held bytes."""
    source, digest = big_source
    target = new_registry()
    line = Line(source, target)
    book = UploadBook(tmp_path / BOOK)
    desc = Descriptor(DOCKER_LAYER, Digest.parse(digest), SIZE)
    job = BlobJob(desc, REPO, [(0, REPO)])
    try:
        cancel = CancelToken()
        threading.Thread(target=_cancel_at_half, args=(book, cancel), daemon=True).start()
        with pytest.raises(Cancelled):
            _mover(line, book, cancel, []).run(job)
        held = _held(tmp_path)
        assert SIZE * 0.45 <= held < SIZE
        line.rate = None
        events: list[object] = []
        assert _mover(line, book, CancelToken(), events).run(job) == {}
    finally:
        line.stop()
    amounts = [e.nbytes for e in events if isinstance(e, BlobProgress)]
    assert amounts[0] == held  # the bar starts where the target stands
    assert sum(amounts) == SIZE
    assert "holds" in " ".join(e.text for e in events if isinstance(e, Message))


def _cancel_at_half(book: UploadBook, cancel: CancelToken) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _held(book.path.parent) < SIZE * 0.45:
        time.sleep(0.02)
    cancel.cancel()


def _mover(line: Line, book: UploadBook, cancel: CancelToken, events: list) -> BlobMover:
    src = Registry(RegistryConfig(registry=line.src.url))
    dst = Registry(RegistryConfig(registry=line.dst.url), writable=True)
    dst.uploads = book
    target = Target(dst, dst.host, None)
    return BlobMover(src, [target], RetryPolicy(retries=1), cancel, events.append)


def test_a_stopped_copy_through_the_cache_keeps_and_continues_its_part(
    big_source, new_registry, tmp_path
):
    """With the cache on, the part read before Ctrl-C stays as a partial entry; the rerun
    serves it from disk, reads only the rest from the source and commits the whole."""
    source, digest = big_source
    target = new_registry()
    (tmp_path / "cfg.yaml").write_text("cache:\n  pathname: blobcache\n")
    line = Line(source, target)
    try:
        _stop_at_half(tmp_path, line, "SIGINT")
        partials = list((tmp_path / "blobcache" / "partial").iterdir())
        assert [p.stat().st_size >= SIZE * 0.45 for p in partials] == [True]
        read, sent, _ = _rerun(tmp_path, line)
    finally:
        line.stop()
    print(f"cache: rerun read {read / SIZE:.0%} from the source, uploaded {sent / SIZE:.0%}")
    assert read <= SIZE * 0.6 and sent <= SIZE * 0.6
    _assert_identical(source, target, digest)
    entry = tmp_path / "blobcache" / "blobs" / "sha256" / digest.split(":")[1]
    assert "sha256:" + hashlib.sha256(entry.read_bytes()).hexdigest() == digest
    assert not list((tmp_path / "blobcache" / "partial").iterdir())


def test_a_target_without_patch_gets_whole_uploads(big_source, new_registry, cli):
    source, digest = big_source
    target = new_registry()
    no_patch = FaultProxy(target.port, lambda m, p, n: Fault(status=405) if m == "PATCH" else None)
    try:
        done = cli("copy", f"{REPO}:1", "--from", source.url, "--to", no_patch.url)
    finally:
        no_patch.stop()
    assert done.returncode == 0, done.output
    assert no_patch.count("PATCH", "/blobs/uploads/") == 1  # tried once, then whole uploads
    _assert_identical(source, target, digest)
