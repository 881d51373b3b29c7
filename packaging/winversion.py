"""The Windows version resource of imageferry.exe, made from ``imageferry.__version__``.

Used by imageferry.spec at build time (PyInstaller's own classes; no run-time code).
"""

from __future__ import annotations

import os
import re


def numeric(version: str) -> tuple[int, int, int, int]:
    """``"1.2.3rc1"`` -> ``(1, 2, 3, 0)``: the four numbers Windows shows."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3]]
    return tuple((parts + [0, 0, 0, 0])[:4])  # type: ignore[return-value]


def version_info(version: str) -> object:
    """PyInstaller's ``VSVersionInfo`` for ``version`` (its classes import on Windows only)."""
    from PyInstaller.utils.win32.versioninfo import (
        FixedFileInfo,
        StringFileInfo,
        StringStruct,
        StringTable,
        VarFileInfo,
        VarStruct,
        VSVersionInfo,
    )

    numbers = numeric(version)
    strings = {
        "CompanyName": "imageferry",
        "FileDescription": "imageferry - move container images between registries",
        "FileVersion": version,
        "InternalName": "imageferry",
        "LegalCopyright": "Apache-2.0",
        "OriginalFilename": "imageferry.exe",
        "ProductName": "imageferry",
        "ProductVersion": version,
    }
    return VSVersionInfo(
        ffi=FixedFileInfo(filevers=numbers, prodvers=numbers),
        kids=[
            StringFileInfo(
                [StringTable("040904B0", [StringStruct(k, v) for k, v in strings.items()])]
            ),
            VarFileInfo([VarStruct("Translation", [0x0409, 1200])]),
        ],
    )


def write_version_file(version: str, path: str) -> str:
    """The resource as PyInstaller's version file text (``--version-file``); returns path."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(str(version_info(version)))
    return path
