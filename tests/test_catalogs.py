"""The window's translations: committed .mo files are the compiled .po files, and complete."""

from __future__ import annotations

import ast
import gettext
import importlib.util
import string
from pathlib import Path

import pytest

import imageferry.gui
from imageferry.i18n import LANGUAGES

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location(
    "compile_catalogs", ROOT / "scripts/compile-catalogs.py"
)
assert spec and spec.loader
catalogs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(catalogs)
GUI = Path(imageferry.gui.__file__).parent
# texts translated through a variable (the button labels, job titles)
INDIRECT = {"Check", "Copy", "Save", "Load", "Stop", "Package check"}


def _texts_in_gui() -> set[str]:
    found = set(INDIRECT)
    for path in [
        *GUI.glob("*.py"),
        *(GUI.parent / "cli").glob("*.py"),
        GUI.parent / "i18n" / "__init__.py",
    ]:
        found |= _constant_args(path, "_", 0)
    for path in (GUI.parent / "jobs").glob("*.py"):  # say(level, "template", **values)
        found |= _constant_args(path, "say", 1)
    return found


def _constant_args(path: Path, function: str, index: int) -> set[str]:
    """The constant strings given as argument ``index`` to calls of ``function``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == function
            and len(node.args) > index
            and isinstance(node.args[index], ast.Constant)
        ):
            found.add(node.args[index].value)
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committed_mo_matches_its_po(lang):
    po = catalogs.LOCALE / lang / "LC_MESSAGES" / "imageferry.po"
    mo = po.with_suffix(".mo")
    assert mo.read_bytes() == catalogs.compiled(po), "run scripts/compile-catalogs.py"
    with mo.open("rb") as f:
        assert gettext.GNUTranslations(f).info()["language"] == lang


def test_every_window_text_is_in_both_catalogs():
    for lang in LANGUAGES:
        po = catalogs.LOCALE / lang / "LC_MESSAGES" / "imageferry.po"
        entries = catalogs.po_entries(po.read_text(encoding="utf-8"))
        if lang == "zh_CN":  # en_US: English is the source, its msgstr stay empty
            entries = {k: v for k, v in entries.items() if v}
        missing = sorted(_texts_in_gui() - set(entries))
        assert not missing, f"{lang} lacks {missing}"


def test_zh_cn_keeps_the_placeholders():
    po = catalogs.LOCALE / "zh_CN" / "LC_MESSAGES" / "imageferry.po"

    for msgid, msgstr in catalogs.parse_po(po.read_text(encoding="utf-8")).items():
        names = {f for _, f, _, _ in string.Formatter().parse(msgid) if f}
        assert names == {f for _, f, _, _ in string.Formatter().parse(msgstr) if f}, msgid
