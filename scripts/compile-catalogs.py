#!/usr/bin/env python3
"""Compile the gettext catalogs: every locale/*/LC_MESSAGES/*.po into the .mo beside it.

The same logic as CPython's Tools/i18n/msgfmt.py, cut to what our catalogs use
(msgid/msgstr, continued lines, comments; no plurals or contexts), and
deterministic: the same .po always gives the same bytes, so a test can check
that the committed .mo files match their .po files.

    python scripts/compile-catalogs.py          # write the .mo files
    python scripts/compile-catalogs.py --check  # exit 1 when a .mo is stale
"""

from __future__ import annotations

import ast
import struct
import sys
from pathlib import Path

LOCALE = Path(__file__).resolve().parent.parent / "src" / "imageferry" / "i18n" / "locale"


def parse_po(text: str, name: str = "catalog") -> dict[str, str]:
    """msgid -> msgstr; entries with an empty msgstr are left out (they show the English)."""
    return {k: v for k, v in po_entries(text, name).items() if v or k == ""}


def po_entries(text: str, name: str = "catalog") -> dict[str, str]:
    """Every msgid -> msgstr of a .po file, untranslated ones included."""
    messages: dict[str, str] = {}
    section: str | None = None
    msgid = msgstr = ""

    def flush() -> None:
        if section == "msgstr":
            messages[msgid] = msgstr

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            section, msgid, msgstr = "msgid", "", ""
            line = line[6:]
        elif line.startswith("msgstr "):
            section = "msgstr"
            line = line[7:]
        if not line.startswith('"') or section is None:
            raise ValueError(f"{name}, line {number}: cannot read '{raw}'")
        value = ast.literal_eval(line)
        if section == "msgid":
            msgid += value
        else:
            msgstr += value
    flush()
    return messages


def mo_bytes(messages: dict[str, str]) -> bytes:
    """The GNU .mo format: header, two index tables, then the strings."""
    keys = sorted(messages)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(messages[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    pos_id, pos_str = start, start + len(ids)
    key_table: list[int] = []
    value_table: list[int] = []
    for k in keys:
        kb, vb = k.encode(), messages[k].encode()
        key_table += [len(kb), pos_id]
        value_table += [len(vb), pos_str]
        pos_id += len(kb) + 1
        pos_str += len(vb) + 1
    offsets = key_table + value_table
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + len(keys) * 8, 0, 0)
    return header + struct.pack(f"{len(offsets)}i", *offsets) + ids + strs


def catalogs() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/*.po"))


def compiled(po: Path) -> bytes:
    return mo_bytes(parse_po(po.read_text(encoding="utf-8"), str(po)))


def main(argv: list[str]) -> int:
    stale = []
    for po in catalogs():
        mo = po.with_suffix(".mo")
        data = compiled(po)
        if mo.is_file() and mo.read_bytes() == data:
            continue
        if "--check" in argv:
            stale.append(str(mo))
        else:
            mo.write_bytes(data)
            print(f"wrote {mo}")
    for name in stale:
        print(f"stale: {name} (run scripts/compile-catalogs.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
