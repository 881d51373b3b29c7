"""Stop a running imageferry with Ctrl-C (SIGINT) once it has visibly made progress."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support.verify import blob_exists, get_manifest


def interrupt_when(
    args: list[str], cwd: Path, ready: Callable[[], bool], timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run the CLI, wait until ``ready()`` holds, send SIGINT, return how it ended.

    Waiting on observable progress (not a fixed sleep) keeps the test meaningful on a
    slow or busy machine; the command must still be running when it is interrupted.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "imageferry", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "no progress to interrupt"
        time.sleep(0.05)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def layer_digests(base: str, repository: str, tag: str) -> list[str]:
    return [layer["digest"] for layer in json.loads(get_manifest(base, repository, tag))["layers"]]


def any_blob_in(base: str, blobs: list[tuple[str, str]]) -> Callable[[], bool]:
    """A ``ready`` condition: one of these (repository, digest) blobs exists at ``base``."""
    return lambda: any(blob_exists(base, repo, digest) for repo, digest in blobs)
