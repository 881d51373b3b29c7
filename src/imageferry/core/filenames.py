"""The plain-file-name rule: a name from outside becomes part of a path only if it passes.

A plain name stays in the folder it is put in, on Windows and elsewhere: no
separators, no ``..``, no drive colon, no control or Windows-forbidden
characters, no reserved device name (``CON``, ``NUL``, ``COM1`` …), no
trailing dot or space (Windows drops them silently).
"""

from __future__ import annotations

import re

from imageferry.core.errors import InputError

MAX_PREFIX = 64
_FORBIDDEN = r'[\x00-\x1f\x7f/\\:<>"|?*]'  # compiled at first use (re's cache)
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {
    f"{dev}{n}" for dev in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]
}


def check_file_prefix(prefix: str, what: str = "prefix") -> str:
    """``prefix`` unchanged if it is a plain file-name part; else :class:`InputError` saying why.

    Used for cfg.yaml ``outprefix`` and ``save --prefix``: package files are
    named ``<prefix>_full_<time>_<n>.tar`` inside the dated folder.
    """
    problem = _prefix_problem(prefix)
    if problem:
        shown = prefix.encode("unicode_escape").decode("ascii")
        raise InputError(
            f"{what} '{shown}' {problem}; use letters, digits, '-', '_' or '.', e.g. img"
        )
    return prefix


def _prefix_problem(prefix: str) -> str | None:
    if not prefix:
        return "is empty"
    if len(prefix) > MAX_PREFIX:
        return f"is longer than {MAX_PREFIX} characters"
    bad = re.search(_FORBIDDEN, prefix)
    if bad:
        char = bad.group().encode("unicode_escape").decode("ascii")
        return f"contains '{char}', which is not allowed in a file name"
    if ".." in prefix:
        return "contains '..'"
    if prefix != prefix.strip() or prefix.endswith("."):
        return "starts or ends with a space, or ends with a dot"
    if prefix.split(".")[0].upper() in _RESERVED:
        return "is a reserved device name on Windows"
    return None
