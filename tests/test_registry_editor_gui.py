"""The registry editor window under Xvfb: real widgets, the real registry, real files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from imageferry.core.config import load_config
from imageferry.testing.registry_server import htpasswd_auth

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pa55word"
pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed")


@pytest.fixture
def tk_root(display, monkeypatch):
    import tkinter as tk

    monkeypatch.setenv("DISPLAY", display)
    root = tk.Tk()
    root.withdraw()
    yield root
    root.destroy()


def _pump(root, until, limit: float = 30.0) -> None:
    """Run Tk's event loop until ``until()`` is true (bounded)."""
    deadline = time.monotonic() + limit
    while not until():
        assert time.monotonic() < deadline, "the window did not get there"
        root.update()
        time.sleep(0.02)


def _type(box, text: str) -> None:
    box.delete(0, "end")
    box.insert(0, text)


def test_editor_on_a_missing_cfg_yaml_tests_and_saves_a_target(
    tk_root, new_registry, tmp_path, monkeypatch
):
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    from imageferry.gui.registry_editor import RegistryEditor
    from imageferry.registry import keyring_store

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    try:
        target = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))
        path = tmp_path / "cfg.yaml"
        saved: list[bool] = []
        editor = RegistryEditor(tk_root, path, lambda: saved.append(True))
        tk_root.update()
        assert "does not exist yet" in editor.problem_label.cget("text")

        editor.add("target")
        form = editor.form
        _type(form.inputs["name"], "site")
        _type(form.inputs["registry"], target.url)
        _type(form.inputs["user"], "admin")
        _type(form.inputs["password"], "wrong-Pa55")
        assert form.keep.get() is True  # a keyring exists: on by default
        editor.test_button.invoke()
        _pump(tk_root, lambda: "\u2718" in str(editor.test_label.cget("text")))
        assert "refused" in str(editor.test_label.cget("text"))

        _type(form.inputs["password"], PASSWORD)
        editor.test_button.invoke()
        _pump(tk_root, lambda: "\u2714" in str(editor.test_label.cget("text")))
        assert "connected as admin" in str(editor.test_label.cget("text"))

        _type(form.inputs["repository"], "Bad Namespace")
        editor.save_button.invoke()
        assert not path.exists() and not saved
        assert form.errors["repository"].cget("style") == "Error.TLabel"

        _type(form.inputs["repository"], "yyyy")
        editor.save_button.invoke()
        assert saved == [True] and not editor.top.winfo_exists()
        text = path.read_text()
        assert PASSWORD not in text and "password" not in text
        config = load_config(path)
        site = config.target[0]
        assert (site.name, site.registry, site.user, site.repository) == (
            "site",
            target.url,
            "admin",
            "yyyy",
        )
        assert keyring_store.get_password(target.url, "admin") == PASSWORD
    finally:
        keyring.set_keyring(previous)


def test_editor_lists_what_a_broken_file_holds_and_removes_an_entry(tk_root, tmp_path):
    from imageferry.gui.registry_editor import RegistryEditor

    path = tmp_path / "cfg.yaml"
    path.write_text(
        "source:\n- registry: http://a:5000\n- registry: ftp://b\n  pasword: x\nmaxconn: 7\n"
    )
    editor = RegistryEditor(tk_root, path, lambda: None)
    tk_root.update()
    problems = str(editor.problem_label.cget("text"))
    assert "line 3: source.1.registry" in problems and "line 4: source.1.pasword" in problems
    assert editor.lists["source"].get(0, "end") == ("http://a:5000", "\u26a0 ftp://b")
    editor.lists["source"].selection_set(1)
    editor.remove("source")
    editor.save_button.invoke()
    assert not editor.top.winfo_exists()
    config = load_config(path)
    assert [s.registry for s in config.source] == ["http://a:5000"] and config.maxconn == 7
