"""save resumes inside a layer (issue 14): a blob cut off in a data file is continued.

The source is throttled behind a proxy that counts the bytes it sends; the save
is stopped once the journal records about half of the layer, then rerun. The
package is loaded into a fresh registry and compared with the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied
from test_resume_upload import REPO, SIZE, big_source  # noqa: F401  (the fixture)


class SlowSource:
    def __init__(self, server) -> None:
        self.rate: int | None = 12_000_000

        def slow(method: str, path: str, n: int) -> Fault | None:
            if method == "GET" and "/blobs/sha256:" in path and self.rate:
                return Fault(rate=self.rate)
            return None

        self.proxy = FaultProxy(server.port, slow)

    def read(self) -> int:
        return self.proxy.sent_down.get("GET", 0)


def _save(cwd: Path, url: str) -> subprocess.Popen:
    (cwd / "list.txt").write_text(f"{REPO}:1\n")
    args = ["save", "-l", "list.txt", "--from", url, "-o", "out", "-j", "1"]
    env = {**os.environ, "HOME": str(cwd / "home")}
    return subprocess.Popen(
        [sys.executable, "-m", "imageferry", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _partial(cwd: Path, digest: str) -> int:
    found = 0
    for path in (cwd / "out").glob("*/*.journal"):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("partial") == digest:
                found = max(found, int(rec["bytes"]))
    return found


def _stop_at_half(cwd: Path, src: SlowSource, digest: str, how: str) -> None:
    proc = _save(cwd, src.proxy.url)
    deadline = time.monotonic() + 60
    try:
        while _partial(cwd, digest) < SIZE * 0.45:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the save did not get to half"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGINT) if how == "SIGINT" else proc.kill()
        proc.communicate(timeout=60)
    assert not list((cwd / "out").glob("*/*_meta.yaml"))


def _rerun(cwd: Path, src: SlowSource) -> int:
    src.rate = None
    before = src.read()
    proc = _save(cwd, src.proxy.url)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return src.read() - before


def _load_and_compare(cli, new_registry, source, cwd: Path, digest: str) -> None:
    (meta,) = (cwd / "out").glob("*/*_meta.yaml")
    target = new_registry()
    loaded = cli("load", str(meta), "--to", target.url)
    assert loaded.returncode == 0, loaded.output
    assert_image_copied(source.url, REPO, "1", target.url, REPO)
    with urllib.request.urlopen(f"{target.url}/v2/{REPO}/blobs/{digest}", timeout=60) as r:
        assert "sha256:" + hashlib.sha256(r.read()).hexdigest() == digest


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_stopped_save_reads_only_the_rest(big_source, new_registry, cli, tmp_path, how):  # noqa: F811
    source, digest = big_source
    src = SlowSource(source)
    try:
        _stop_at_half(tmp_path, src, digest, how)
        read = _rerun(tmp_path, src)
    finally:
        src.proxy.stop()
    print(f"save {how}: the rerun read {read / SIZE:.0%} of the layer from the source")
    assert read <= SIZE * 0.6, f"the rerun read {read} of {SIZE} bytes"
    _load_and_compare(cli, new_registry, source, tmp_path, digest)


def test_a_damaged_prefix_is_written_again(big_source, new_registry, cli, tmp_path):  # noqa: F811
    """Wrong bytes inside the part the journal claims: the blob is written whole again."""
    source, digest = big_source
    src = SlowSource(source)
    try:
        _stop_at_half(tmp_path, src, digest, "SIGKILL")
        (data,) = (tmp_path / "out").glob("*/*_0.tar")
        with data.open("r+b") as f:
            f.seek(4096)
            byte = f.read(1)
            f.seek(4096)
            f.write(bytes([byte[0] ^ 0xFF]))
        read = _rerun(tmp_path, src)
    finally:
        src.proxy.stop()
    assert read >= SIZE
    _load_and_compare(cli, new_registry, source, tmp_path, digest)
