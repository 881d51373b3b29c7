"""Opening package files for writing, never through a link.

A save's output folder may hold links someone placed there (a data file name
is predictable), and writing through one would overwrite whatever it points
to. Every file the writer and the journal write is opened here: a link in its
place is refused, and where the OS offers ``O_NOFOLLOW`` the open itself
refuses one that appears between the check and the open.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, cast

from imageferry.core.errors import PackageError
from imageferry.package.space import fsync_folder, is_out_of_space

_FLAGS = {
    "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "r+b": os.O_RDWR,
}
_EXTRA = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def open_no_link(path: Path, mode: str) -> BinaryIO:
    """``path`` opened in ``mode`` (wb, ab, r+b); PackageError if it is a link."""
    if path.is_symlink():
        raise PackageError(
            f"{path} is a link; imageferry does not write through links. Remove it (or choose "
            "another -o folder) and run the same command again"
        )
    try:
        fd = os.open(path, _FLAGS[mode] | _EXTRA, 0o644)
    except OSError as exc:
        if is_out_of_space(exc):
            raise  # the caller knows the space needed and says so
        raise PackageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return cast(BinaryIO, os.fdopen(fd, mode))


def write_text_no_link(path: Path, text: str) -> None:
    with open_no_link(path, "wb") as f:
        f.write(text.encode("utf-8"))


def sync(f: BinaryIO) -> None:
    """Flush ``f`` to the disk itself (blocking), not just to the OS."""
    f.flush()
    os.fsync(f.fileno())


def replace_text_no_link(path: Path, text: str, durable: bool = True) -> None:
    """Put ``text`` at ``path`` whole or not at all: temp file, fsync, rename.

    A crash leaves the old file or the new one, never a mix. Raises OSError when the
    text cannot be written (the temp file is then removed), PackageError for a link.
    ``durable=False`` skips both fsyncs: after a crash the file may then be missing
    or empty (for a caller that fsyncs it later, before anything depends on it).
    """
    temp = path.with_name(path.name + ".tmp")
    try:
        with open_no_link(temp, "wb") as f:
            f.write(text.encode("utf-8"))
            if durable:
                sync(f)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)
