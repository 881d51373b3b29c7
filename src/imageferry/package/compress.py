"""zstd for data files: one frame per tar entry, so a reader can seek to any blob."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from imageferry.package.container import read_exactly
from imageferry.package.nolink import open_no_link
from imageferry.package.tarfmt import BLOCK, padding, parse_header, read_span

COPY = 1024 * 1024


def compress_tar(src: Path, dst: Path, level: int = 3) -> dict[int, int]:
    """Write ``dst`` as zstd frames, one per entry of ``src``; map header offset → frame offset."""
    frames: dict[int, int] = {}
    cctx = zstandard.ZstdCompressor(level=level)
    with src.open("rb") as fin, open_no_link(dst, "wb") as fout:
        while True:
            at = fin.tell()
            block = fin.read(BLOCK)
            if len(block) < BLOCK:
                break
            parsed = parse_header(block, str(src))
            frames[at] = fout.tell()
            writer = cctx.stream_writer(fout, closefd=False)
            if parsed is None:
                writer.write(block + fin.read(BLOCK))
                writer.flush(zstandard.FLUSH_FRAME)
                break
            writer.write(block)
            left = parsed[1] + padding(parsed[1])
            while left:
                chunk = fin.read(min(COPY, left))
                if not chunk:
                    raise OSError(f"{src} ended inside an entry")
                writer.write(chunk)
                left -= len(chunk)
            writer.flush(zstandard.FLUSH_FRAME)
    return frames


def read_frame(f: BinaryIO, frame: int, name: str, size: int) -> Iterator[bytes]:
    """The data of the entry in the frame at ``frame``, which must be entry ``name`` of ``size``.

    Raises ValueError when the frame's tar header names another entry or size.
    """
    reader = open_frame(f, frame, name, size)
    yield from read_span(reader.read, size)


def open_frame(f: BinaryIO, frame: int, name: str, size: int) -> BinaryIO:
    """A reader at the data of the frame at ``frame`` once its header proved to be ``name``.

    Raises ValueError when the frame's tar header names another entry or size, and
    zstandard.ZstdError when there is no frame there.
    """
    f.seek(frame)
    reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=False, closefd=False)
    where = f"frame at {frame}"
    parsed = parse_header(read_exactly(reader, BLOCK), where)  # type: ignore[arg-type]
    if parsed != (name, size):
        raise ValueError(f"{where} does not hold {name} of {size} bytes")
    return reader  # type: ignore[return-value]
