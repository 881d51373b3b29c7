"""The program's entry: front end chosen right, missing streams, commands a freezer can see."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import imageferry.__main__ as entry
from imageferry.cli.parser import build_parser
from imageferry.testing import demo

CLI_MAIN = Path(entry.__file__).parent / "cli" / "main.py"

# Run `python -m imageferry ARGS` as a windowed process does: no standard streams at all.
WINDOWED = """
import runpy, sys
sys.stdin = sys.stdout = sys.stderr = None
sys.argv = ["imageferry", *sys.argv[1:]]
runpy.run_module("imageferry", run_name="__main__", alter_sys=True)
"""


def _commands() -> set[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def test_every_command_is_imported_by_name_in_the_source():
    """PyInstaller sees only imports written out; one built from a string is left out."""
    tree = ast.parse(CLI_MAIN.read_text())
    command = next(
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_command"
    )
    imported = {
        alias.name
        for node in ast.walk(command)
        if isinstance(node, ast.ImportFrom) and node.module == "imageferry.cli"
        for alias in node.names
    }
    wanted = {f"{name}_cmd" for name in _commands() if name != "gui"}  # gui: not a cli module
    assert wanted | {"check_package"} <= imported


def _windowed(tmp_path: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", WINDOWED, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = tmp_path / "imageferry.log"
    return done.returncode, log.read_text() if log.exists() else ""


def test_windowed_process_bad_input_is_exit_2_and_logged(tmp_path):
    # before: printing the message to a None stderr failed: exit 1, nothing shown, nothing logged
    code, log = _windowed(tmp_path, "copy", "demo/app:1", "--to", "http://127.0.0.1:9")
    assert code == 2, log
    assert " ERROR " in log and "internal error" not in log


def test_windowed_process_failed_image_renders_progress(tmp_path):
    # progress and the summary ask sys.stderr.isatty() and print: no stream must not crash them
    down = "http://127.0.0.1:9"  # nothing listens: the image fails
    code, log = _windowed(
        tmp_path, "copy", "demo/app:1", "--from", down, "--to", down, "--retries", "0"
    )
    assert code == 1, log
    assert "internal error" not in log


@pytest.mark.skipif(sys.platform == "win32", reason="display rules of X11/Wayland desktops")
def test_desktop_needs_a_display_and_no_terminal(monkeypatch):
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(entry, "_any_terminal", lambda: False)
    assert entry.on_desktop()
    monkeypatch.setattr(entry, "_any_terminal", lambda: True)
    assert not entry.on_desktop()
    monkeypatch.setattr(entry, "_any_terminal", lambda: False)
    monkeypatch.delenv("DISPLAY")
    assert not entry.on_desktop()


def test_no_arguments_on_a_desktop_open_the_window(monkeypatch, tmp_path):
    opened = []
    fake = types.ModuleType("imageferry.gui")
    fake.main = lambda argv=None: opened.append(Path.cwd()) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imageferry.gui", fake)
    monkeypatch.setattr(entry, "on_desktop", lambda: True)
    monkeypatch.setattr(entry, "program_dir", lambda: tmp_path)
    monkeypatch.chdir(Path.home())
    assert entry.main([]) == 0
    assert opened == [tmp_path]  # started beside the program: cfg.yaml, packages, log there


def test_no_window_in_this_build_prints_help(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "imageferry.gui", None)  # import fails
    monkeypatch.setattr(entry, "on_desktop", lambda: True)
    assert entry.main([]) == 2
    out = capsys.readouterr()
    assert "usage: imageferry" in out.out and "window is not available" in out.err


def test_demo_runs_the_frozen_program_itself(monkeypatch):
    assert demo.program() == [sys.executable, "-m", "imageferry"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert demo.program() == [sys.executable]
    assert demo.program("dist/imageferry") == [str(Path("dist/imageferry").resolve())]


def test_version_imports_no_engine():
    """``--version`` (and every start) stays quick: pydantic, urllib3, rich load only when a
    command needs them."""
    code = (
        "import sys\n"
        "from imageferry.__main__ import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('pydantic', 'urllib3', 'rich', 'yaml', 'zstandard', 'tkinter')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
