"""A private X server for the window tests: Xvfb on a display it picks itself."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def xvfb(width: int = 1280, height: int = 860, timeout: float = 20) -> Iterator[str]:
    """Start Xvfb (``-displayfd``: no clash with other X servers), yield ":N", stop it."""
    binary = shutil.which("Xvfb")
    if binary is None:
        raise RuntimeError("Xvfb is not installed: run scripts/setup.sh")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [
            binary,
            "-displayfd",
            str(write),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read], [], [], max(left, 0))
            if not ready:
                raise RuntimeError(f"Xvfb did not start within {timeout}s")
            chunk = os.read(read, 16)
            if not chunk:
                raise RuntimeError("Xvfb exited before it chose a display")
            number += chunk
        yield f":{int(number)}"
    finally:
        os.close(read)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
