"""A full disk while a package is written: told as such, with the folder and the space needed.

An ``OSError`` of a write is either "no space" (ENOSPC, a quota, a file size
limit; Windows' ERROR_DISK_FULL arrives as ENOSPC too) or something else; only
the first gets :class:`OutOfSpaceError`, whose message says where, how much
more is needed, how much is free, and that a rerun resumes.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from imageferry.core.errors import ImageFerryError

_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class OutOfSpaceError(ImageFerryError):
    """The disk (or quota) of the package folder is full. Not bad input: exit 1, not 2."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


def is_out_of_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _NO_SPACE


def free_space(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def out_of_space(folder: Path, needed: int) -> OutOfSpaceError:
    """The error for a full disk under ``folder`` when about ``needed`` more bytes are due."""
    free = free_space(folder)
    told = f"{human_size(free)} free now" if free is not None else "free space unknown"
    return OutOfSpaceError(
        f"the disk of {folder} is full: the package needs about {human_size(needed)} more "
        f"there ({told}). Free some space and run the same command again: it resumes where "
        "it stopped (or choose another -o folder to start over there)",
        folder,
    )


def human_size(n: int) -> str:
    size, unit = float(n), "bytes"
    for bigger in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable where the OS allows it (not on Windows: ignored)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
