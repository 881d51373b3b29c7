"""Dependencies point one way: front ends → jobs → engine → registry → core."""

from __future__ import annotations

import ast
from pathlib import Path

import imageferry

SRC = Path(imageferry.__file__).parent
ALLOWED = {
    "core": {"core"},
    "registry": {"core", "registry"},
    "package": {"core", "package", "__init__"},
    "cache": {"core", "cache"},
    "engine": {"core", "registry", "package", "cache", "engine"},
    "jobs": {"core", "engine", "jobs"},
    "cli": {"core", "jobs", "cli", "__init__"},
    "testing": {"core", "registry", "testing"},
}
POSIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_layers_import_only_downwards():
    problems = []
    for path in SRC.rglob("*.py"):
        layer = path.relative_to(SRC).parts[0]
        if layer not in ALLOWED:
            continue
        for module in _imports(path):
            if module == "imageferry":
                continue
            if module.startswith("imageferry."):
                if module.split(".")[1] not in ALLOWED[layer]:
                    problems.append(f"{path.relative_to(SRC)} imports {module}")
            if module.split(".")[0] == "tkinter" or module.split(".")[0] in POSIX_ONLY:
                problems.append(f"{path.relative_to(SRC)} imports {module}")
    assert not problems, problems


def test_public_surface_is_pinned():
    assert imageferry.__all__ == ["__version__"]
