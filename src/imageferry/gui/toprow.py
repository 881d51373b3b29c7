"""The top row: source picker, targets (one or several), connections, retries, options."""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk

from imageferry.core.config import Config
from imageferry.core.filesize import FAT32, size_text
from imageferry.gui.actions import Choices
from imageferry.i18n import _


class TopRow(ttk.Frame):
    def __init__(self, parent: tk.Misc, on_registries: Callable[[], None]) -> None:
        super().__init__(parent)
        self.source = tk.StringVar(self)
        self.target_flags: dict[str, tk.BooleanVar] = {}
        self.maxconn = tk.IntVar(self, 5)
        self.retries = tk.IntVar(self, 2)
        self.incremental = tk.BooleanVar(self, False)
        self.single_file = tk.BooleanVar(self, False)
        self.cache = tk.BooleanVar(self, False)
        self.save_folder = tk.StringVar(self)
        self._source_box = self._picker(0, _("Source registry"), self.source)
        self._target_menu = self._target_picker(2)
        self.registries = ttk.Button(self, text=_("Registries…"), command=on_registries)
        self.registries.grid(row=0, column=4, padx=(8, 0), sticky="w")
        self._spin(1, 0, _("Connections"), self.maxconn, 1, 64)
        self._spin(1, 2, _("Retries"), self.retries, 0, 20)
        modes = ttk.Frame(self)
        modes.grid(row=1, column=4, sticky="w", padx=(8, 0))
        ttk.Radiobutton(modes, text=_("Full"), variable=self.incremental, value=False).pack(
            side="left"
        )
        ttk.Radiobutton(modes, text=_("Incremental"), variable=self.incremental, value=True).pack(
            side="left"
        )
        ttk.Checkbutton(modes, text=_("Single file"), variable=self.single_file).pack(
            side="left", padx=(8, 0)
        )
        self._file_size(modes)
        self.cache_box = ttk.Checkbutton(modes, text=_("Local cache"), variable=self.cache)
        self.cache_box.pack(side="left", padx=(8, 0))
        self.columnconfigure(1, weight=1)
        self.columnconfigure(3, weight=1)

    def _file_size(self, parent: ttk.Frame) -> None:
        """Max file size: none / 4 GiB (FAT32) / custom, with the custom size beside it."""
        self.size_kinds = (_("No limit"), _("4 GiB (FAT32)"), _("Custom"))
        self.size_kind = tk.StringVar(self, self.size_kinds[0])
        self.size_custom = tk.StringVar(self, "")
        ttk.Label(parent, text=_("Max file size")).pack(side="left", padx=(8, 2))
        self.size_box = ttk.Combobox(
            parent, textvariable=self.size_kind, values=self.size_kinds, state="readonly", width=14
        )
        self.size_box.pack(side="left")
        self.size_entry = ttk.Entry(parent, textvariable=self.size_custom, width=7)
        self.size_entry.pack(side="left", padx=(2, 0))
        self.size_kind.trace_add("write", lambda *_args: self._size_state())
        self._size_state()

    def _size_state(self) -> None:
        custom = self.size_kind.get() == self.size_kinds[2]
        self.size_entry.configure(state="normal" if custom else "disabled")

    def set_max_file_size(self, size: int | None) -> None:
        """Show cfg.yaml's ``maxfilesize``: none, the FAT32 preset, or a custom size."""
        if size is None:
            self.size_kind.set(self.size_kinds[0])
        elif size == FAT32:
            self.size_kind.set(self.size_kinds[1])
        else:
            self.size_kind.set(self.size_kinds[2])
            self.size_custom.set(size_text(size))

    def max_file_size(self) -> str:
        """``none``, ``fat32`` or the custom text (checked when a save starts)."""
        kind = self.size_kind.get()
        if kind == self.size_kinds[1]:
            return "fat32"
        if kind == self.size_kinds[2]:
            return self.size_custom.get().strip()
        return "none"

    def _picker(self, column: int, label: str, var: tk.StringVar) -> ttk.Combobox:
        ttk.Label(self, text=label).grid(row=0, column=column, sticky="w", padx=(0, 4))
        box = ttk.Combobox(self, textvariable=var, state="readonly", width=22)
        box.grid(row=0, column=column + 1, sticky="ew", padx=(0, 8), pady=2)
        return box

    def _target_picker(self, column: int) -> tk.Menu:
        """A drop-down of check marks: copy, watch and load go to every target ticked."""
        ttk.Label(self, text=_("Target registries")).grid(
            row=0, column=column, sticky="w", padx=(0, 4)
        )
        self.target_button = ttk.Menubutton(self, width=22)
        self.target_button.grid(row=0, column=column + 1, sticky="ew", padx=(0, 8), pady=2)
        menu = tk.Menu(self.target_button, tearoff=False)
        self.target_button.configure(menu=menu)
        return menu

    def _show_targets(self) -> None:
        chosen = self.targets()
        self.target_button.configure(text=", ".join(chosen) if chosen else _("(none)"))

    def set_targets(self, names: list[str], chosen: list[str]) -> None:
        """Offer ``names``; tick those of ``chosen`` that exist, else the first one."""
        kept = [n for n in chosen if n in names] or names[:1]
        self._target_menu.delete(0, "end")
        self.target_flags = {n: tk.BooleanVar(self, n in kept) for n in names}
        for name, flag in self.target_flags.items():
            self._target_menu.add_checkbutton(label=name, variable=flag, command=self._show_targets)
        self._show_targets()

    def targets(self) -> list[str]:
        """The ticked targets, in cfg.yaml's order."""
        return [name for name, flag in self.target_flags.items() if flag.get()]

    def _spin(self, row: int, column: int, label: str, var: tk.IntVar, lo: int, hi: int) -> None:
        ttk.Label(self, text=label).grid(row=row, column=column, sticky="w", padx=(0, 4))
        spin = ttk.Spinbox(self, from_=lo, to=hi, textvariable=var, width=5)
        spin.grid(row=row, column=column + 1, sticky="w", pady=2)

    def fill(self, config: Config, source: str, targets: list[str]) -> None:
        """Names from cfg.yaml; the last used ones selected when they still exist."""
        sources = [r.display_name for r in config.source]
        self._source_box.configure(values=sources)
        self.source.set(source if source in sources else (sources[0] if sources else ""))
        self.set_targets([r.display_name for r in config.target], targets)
        self.maxconn.set(config.maxconn)
        self.retries.set(config.retries)
        self.single_file.set(config.singlefile)
        self.set_max_file_size(config.maxfilesize)
        self.cache.set(config.cache is not None)
        self.cache_box.configure(state="normal" if config.cache is not None else "disabled")

    def choices(self) -> Choices:
        """What is chosen now; a spinbox holding no number gives -1, which the job refuses."""
        folder = self.save_folder.get()
        return Choices(
            source=self.source.get() or None,
            targets=tuple(self.targets()),
            maxconn=_int(self.maxconn),
            retries=_int(self.retries),
            incremental=self.incremental.get(),
            single_file=self.single_file.get(),
            max_file_size=self.max_file_size(),
            cache=self.cache.get(),
            save_folder=Path(folder) if folder else None,
        )


def _int(var: tk.IntVar) -> int:
    try:
        return int(var.get())
    except (tk.TclError, ValueError):
        return -1
