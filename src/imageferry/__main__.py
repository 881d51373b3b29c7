"""The program's entry: the command line with a command, the window with none on a desktop.

``python -m imageferry`` and the frozen program (``scripts/build-exe.sh``) both start in
:func:`main`. It picks the front end and makes sure neither finds ``None`` for a standard
stream, which is what a windowed process (``pythonw``, a program started by a double-click)
has: a ``print`` or ``.isatty()`` would otherwise fail before anything could be shown.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path


def fill_missing_streams() -> None:
    """Replace a ``None`` standard stream by one on the null device (never blocks)."""
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))  # noqa: SIM115


def program_dir() -> Path:
    """The folder of the program the user started (the one-file program's own, not its unpack)."""
    frozen = getattr(sys, "frozen", False)
    return Path(sys.executable if frozen else sys.argv[0]).resolve().parent


def _any_terminal() -> bool:
    streams = (sys.stdin, sys.stdout, sys.stderr)
    return any(s is not None and hasattr(s, "isatty") and s.isatty() for s in streams)


def _is_onefile() -> bool:
    """Frozen as one file: then a parent process (the unpacker) runs this one."""
    unpacked = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or unpacked is None:
        return False
    here = Path(sys.executable).resolve().parent
    return Path(unpacked).resolve() not in (here, here / "_internal")


def _windows_console_is_ours() -> bool:
    """No console, or one this program created (started by a double-click, not from a shell).

    The same rule PyInstaller's ``hide-early`` uses to hide the console: the console window
    belongs to this process (or, for the one-file program, to its unpacking parent).
    """
    if sys.platform != "win32":
        return False
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32")
    user32 = ctypes.WinDLL("user32")
    kernel32.GetConsoleWindow.restype = wintypes.HWND
    user32.GetWindowThreadProcessId.argtypes = (wintypes.HWND, ctypes.POINTER(wintypes.DWORD))
    user32.GetWindowThreadProcessId.restype = wintypes.DWORD
    window = kernel32.GetConsoleWindow()
    if not window:
        # pythonw has no console and no streams: a desktop start. A console program started
        # without a console window (a service, a scheduled task, CI) has streams: not one.
        return sys.stderr is None
    owner = wintypes.DWORD(0)
    if not user32.GetWindowThreadProcessId(window, ctypes.byref(owner)):
        return False
    ours = {os.getpid(), os.getppid()} if _is_onefile() else {os.getpid()}
    return owner.value in ours


def on_desktop() -> bool:
    """Started without a terminal on a desktop: the window is what the user wants.

    Windows: no console of a shell (see below). Elsewhere: a display, and no standard
    stream is a terminal (a file manager's double-click, a desktop launcher).
    """
    if sys.platform == "win32":
        try:
            return _windows_console_is_ours()
        except (OSError, AttributeError):  # no kernel32/user32 to ask (Wine, a sandbox)
            return False
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return has_display and not _any_terminal()


def _window() -> Callable[[], object] | None:
    """``imageferry.gui.main`` when this build has the window (and tkinter), else None."""
    try:  # by name: the frozen build collects every imageferry module (packaging/)
        gui = importlib.import_module("imageferry.gui")
    except ImportError as exc:
        print(f"imageferry: the window is not available here ({exc})", file=sys.stderr)
        return None
    return lambda: gui.main([])  # a double-click passes no arguments


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    desktop = not args and on_desktop()  # before the streams are filled: None tells
    fill_missing_streams()
    if desktop:
        start = _window()
        if start is not None:
            os.chdir(program_dir())  # cfg.yaml, packages and the log beside the program
            result = start()
            return result if isinstance(result, int) else 0
    from imageferry.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
