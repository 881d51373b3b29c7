"""The window (``imageferry gui``): the same jobs as the CLI, driven from a Tk window."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from imageferry.core.config import CONFIG_NAME


def config_path(explicit: str | None) -> Path:
    """``-c PATH``; else cfg.yaml here or beside the program; else here (to be created)."""
    if explicit:
        return Path(explicit).resolve()
    program_dir = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).parent
    for folder in (Path.cwd(), program_dir):
        if (folder / CONFIG_NAME).is_file():
            return (folder / CONFIG_NAME).resolve()
    return (Path.cwd() / CONFIG_NAME).resolve()


def _log_to(path: Path) -> None:
    """Details of errors (and of bugs) go to imageferry.log beside cfg.yaml, as with the CLI."""
    log = logging.getLogger("imageferry")
    log.setLevel(logging.INFO)
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return  # a read-only folder: the window still works, without a log file
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    """Open the window; returns the exit code when it is closed (2 when no display)."""
    parser = argparse.ArgumentParser(prog="imageferry gui")
    parser.add_argument("-c", "--config", metavar="CFG")
    parser.add_argument("--lang", choices=["zh_CN", "en_US"])
    args = parser.parse_args(argv)
    from imageferry.gui.look import enable_dpi_awareness

    enable_dpi_awareness()
    import tkinter as tk

    try:
        root = tk.Tk()
    except tk.TclError as exc:
        print(f"imageferry: cannot open a window: {exc}", file=sys.stderr)
        return 2
    from imageferry.gui.app import App

    path = config_path(args.config)
    _log_to(path.parent / "imageferry.log")
    App(root, path, args.lang)
    root.mainloop()
    return 0
