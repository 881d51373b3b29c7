"""Sizes people write (``500M``, ``2G``, ``4GiB``, ``fat32``) turned into bytes.

``K``/``M``/``G``/``T`` (and ``KB``…) are powers of 1000, ``KiB``/``MiB``/…
powers of 1024: for a limit, reading ``4G`` as the smaller number is the safe
side. ``fat32`` is the largest file FAT32 holds: 4 GiB − 1 byte.
"""

from __future__ import annotations

import re

from imageferry.core.errors import InputError

FAT32 = 4 * 1024**3 - 1
MIN_FILE_SIZE = 1024 * 1024  # smaller data files would be mostly tar headers
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_SIZE = r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$"  # compiled at first use (re's cache)


def parse_size(text: str | int, what: str = "--max-file-size") -> int:
    """Bytes; raises :class:`InputError` naming ``what`` for junk or a size under 1 MiB."""
    if isinstance(text, int) and not isinstance(text, bool):
        size = text
    elif isinstance(text, str) and text.strip().lower() == "fat32":
        return FAT32
    else:
        size = _parse_text(str(text), what)
    if size < MIN_FILE_SIZE:
        raise InputError(f"{what}: {text} is less than the smallest data file size, 1MiB")
    return size


def _parse_text(text: str, what: str) -> int:
    m = re.match(_SIZE, text, re.IGNORECASE)
    if m is None or (m.group(3) and not m.group(2)):
        raise InputError(
            f"{what}: '{text}' is not a size; write it like 500M, 2G, 4GiB, or fat32 "
            "(M, G = 1000² and 1000³ bytes; MiB, GiB = 1024² and 1024³)"
        )
    number, unit, binary = m.group(1), m.group(2).lower(), m.group(3)
    factor = 1024 ** " kmgt".index(unit) if binary else _UNITS[unit]
    return int(float(number) * factor) if "." in number else int(number) * factor


def size_text(size: int) -> str:
    """Bytes for people: ``8MB``, ``4GiB−1`` (fat32), ``1500000B`` when nothing rounder fits."""
    if size == FAT32:
        return "4GiB−1 (FAT32)"
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("GB", 1000**3), ("MB", 1000**2)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
