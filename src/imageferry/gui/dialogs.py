"""Every question the window asks, in one replaceable object (tests answer them)."""

from __future__ import annotations

import tkinter as tk
from dataclasses import dataclass
from pathlib import Path
from tkinter import filedialog, messagebox

from imageferry.i18n import _


@dataclass
class Dialogs:
    """Tk's standard dialogs; tests put plain functions in these slots instead."""

    parent: tk.Misc

    def ask_meta(self, title: str, folder: str) -> Path | None:
        """A package's ``*_meta.yaml`` file, or None when cancelled."""
        name = filedialog.askopenfilename(
            parent=self.parent,
            title=title,
            initialdir=folder or None,
            filetypes=[(_("Package meta file"), "*_meta.yaml *_meta.yml"), (_("All files"), "*")],
        )
        return Path(name) if name else None

    def ask_folder(self, title: str, folder: str) -> Path | None:
        name = filedialog.askdirectory(parent=self.parent, title=title, initialdir=folder or None)
        return Path(name) if name else None

    def confirm(self, title: str, text: str) -> bool:
        return bool(messagebox.askyesno(title, text, parent=self.parent))

    def error(self, title: str, text: str) -> None:
        messagebox.showerror(title, text, parent=self.parent)

    def info(self, title: str, text: str) -> None:
        messagebox.showinfo(title, text, parent=self.parent)
