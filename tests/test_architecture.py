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
    "cli": {"core", "jobs", "cli", "i18n", "__init__"},
    "gui": {"core", "jobs", "gui", "i18n", "__init__"},
    "i18n": {"i18n"},
    "testing": {"core", "registry", "testing"},
}
TOP_LEVEL = {"__init__.py", "__main__.py", "py.typed"}
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
            top = module.split(".")[0]
            if (top == "tkinter" and layer != "gui") or top in POSIX_ONLY:
                problems.append(f"{path.relative_to(SRC)} imports {module}")
    assert not problems, problems


def test_public_surface_is_pinned():
    assert imageferry.__all__ == ["__version__"]


def test_every_module_belongs_to_a_layer():
    strays = [
        str(p.relative_to(SRC))
        for p in SRC.iterdir()
        if p.name not in TOP_LEVEL and p.name not in ALLOWED and p.name != "__pycache__"
    ]
    assert not strays, f"modules outside the layers of ALLOWED: {strays}"
