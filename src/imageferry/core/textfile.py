"""Text files users edit by hand (cfg.yaml, image lists), in whatever encoding their editor chose.

Windows editors save UTF-16 ("Unicode"), UTF-8 with a BOM, or the ANSI code
page (GBK on a Chinese system). A byte-order mark decides; without one UTF-8
is tried first, then GBK, then the ANSI code page of this machine. A file none
of them reads is refused with the line of the first bad byte and what to do.
"""

from __future__ import annotations

import codecs
import locale
from pathlib import Path

from imageferry.core.errors import InputError

NUL = b"\x00"
MAX_TEXT_BYTES = 64 * 1024 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAVE_AS = "save it as UTF-8 (in Notepad: File > Save as > Encoding: UTF-8) and run again"


def ansi_encoding() -> str:
    """The ANSI code page on Windows (cp936, cp1252, …); the locale's encoding elsewhere."""
    return locale.getencoding()


def read_text_file(path: Path) -> str:
    """The text of ``path``, decoded as described above.

    Raises :class:`InputError` naming the file when it cannot be read, is too
    big, is binary, or is in no encoding tried.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_TEXT_BYTES + 1)
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a text file") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(f"{path} is over {MAX_TEXT_BYTES // 2**20} MiB: not a text file I expect")
    return decode_text(data, str(path))


def decode_text(data: bytes, origin: str) -> str:
    """``data`` decoded by BOM, else UTF-8, GBK, the ANSI code page (see the module doc)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{origin}: starts as {encoding.upper()} text but byte {exc.start + len(bom)} "
                    f"is not; {SAVE_AS}"
                ) from None
    if NUL in data:
        raise InputError(
            f"{origin}, line {_line_at(data, data.index(NUL))}: "
            f"holds NUL bytes (a binary file, or UTF-16 without a byte-order mark); {SAVE_AS}"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc
    for encoding in _fallbacks():
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    at = first_bad.start
    raise InputError(
        f"{origin}, line {_line_at(data, at)}: not UTF-8 text (byte 0x{data[at]:02X}), "
        f"nor GBK or this system's code page; {SAVE_AS}"
    )


def _fallbacks() -> list[str]:
    out: list[str] = []
    for name in ("gbk", ansi_encoding()):
        try:
            canonical = codecs.lookup(name).name
        except LookupError:
            continue
        if canonical not in out and canonical != "utf-8":
            out.append(canonical)
    return out


def _line_at(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1
