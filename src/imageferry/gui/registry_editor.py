"""The registry editor: source and target registries of cfg.yaml, added, changed,
removed, tested and saved, without a text editor.

It opens on a missing or broken cfg.yaml too: what is wrong is shown at the
top (file, line, key), the entries that could be read are listed, and saving
writes a valid file (a file that is not YAML is kept as cfg.yaml.bak).
A connection test runs on a worker thread; the window polls it with after().
"""

from __future__ import annotations

import queue
import threading
import tkinter as tk
from collections.abc import Callable
from functools import partial
from pathlib import Path
from tkinter import messagebox, ttk
from typing import Literal

from imageferry.core.errors import ImageFerryError
from imageferry.gui.registry_form import RegistryForm
from imageferry.i18n import _
from imageferry.jobs import registries
from imageferry.jobs.registries import ConnectionReport, RegistryEntry

Kind = Literal["source", "target"]
KINDS: tuple[Kind, Kind] = ("source", "target")
POLL_MS = 100
TEST_TIMEOUT = 20.0


def open_registry_editor(parent: tk.Misc, config_path: Path, on_saved: Callable[[], None]) -> None:
    """Open the editor for ``config_path`` (it need not exist); ``on_saved`` after a save."""
    RegistryEditor(parent, config_path, on_saved)


class RegistryEditor:
    """The editor's Toplevel and its state: the two lists and the entry in the form."""

    def __init__(self, parent: tk.Misc, config_path: Path, on_saved: Callable[[], None]) -> None:
        self.config_path = config_path
        self.on_saved = on_saved
        found = registries.read_registries(config_path)
        self.entries: dict[Kind, list[RegistryEntry]] = {
            "source": list(found.sources),
            "target": list(found.targets),
        }
        self.current: tuple[Kind, int] | None = None
        self.results: queue.Queue[ConnectionReport] = queue.Queue()
        self.top = tk.Toplevel(parent)
        self.top.title(_("Registries") + f" \u2014 {config_path}")
        if parent.winfo_toplevel().winfo_viewable():  # a withdrawn master would hide it
            self.top.transient(parent.winfo_toplevel())
        self.top.protocol("WM_DELETE_WINDOW", self.cancel)
        self.top.bind("<Escape>", lambda _e: self.cancel())
        style = ttk.Style(self.top)
        style.configure("Error.TLabel", foreground="#b00020")
        style.configure("Hint.TLabel", foreground="#555555")
        style.configure("Good.TLabel", foreground="#1b6e20")
        body = ttk.Frame(self.top, padding=10)
        body.pack(fill="both", expand=True)
        self._problems(body, found.problems)
        keyring_ok = registries.keyring_available()
        self.form = RegistryForm(body, config_path.parent, keyring_ok)
        self.lists = {kind: self._list_frame(body, kind, row) for row, kind in enumerate(KINDS, 1)}
        self.form.grid(row=1, column=1, rowspan=2, sticky="nsew")
        body.columnconfigure(1, weight=1)
        body.rowconfigure(1, weight=1)
        body.rowconfigure(2, weight=1)
        self._test_row(body)
        self._buttons(body)
        self.refresh()

    # -- layout ------------------------------------------------------------------
    def _problems(self, body: ttk.Frame, problems: list[str]) -> None:
        text = "\n".join(problems)
        self.problem_label = ttk.Label(body, text=text, style="Error.TLabel", wraplength=760)
        self.problem_label.grid(row=0, column=0, columnspan=2, sticky="w", pady=(0, 8))

    def _list_frame(self, body: ttk.Frame, kind: Kind, row: int) -> tk.Listbox:
        title = _("Sources") if kind == "source" else _("Targets")
        frame = ttk.LabelFrame(body, text=title, padding=6)
        frame.grid(row=row, column=0, sticky="nsew", pady=(0, 6))
        box = tk.Listbox(frame, height=6, width=30, exportselection=False, activestyle="none")
        box.grid(row=0, column=0, columnspan=3, sticky="nsew")
        box.bind("<<ListboxSelect>>", lambda _e: self._selected(kind))
        box.bind("<Double-Button-1>", lambda _e: self.edit(kind))
        actions: tuple[tuple[str, Callable[[Kind], None]], ...] = (
            (_("Add"), self.add),
            (_("Edit"), self.edit),
            (_("Remove"), self.remove),
        )
        for column, (text, command) in enumerate(actions):
            button = ttk.Button(frame, text=text, command=partial(command, kind))
            button.grid(row=1, column=column, sticky="ew", pady=(6, 0), padx=(0, 4))
        frame.columnconfigure((0, 1, 2), weight=1)
        frame.rowconfigure(0, weight=1)
        return box

    def _test_row(self, body: ttk.Frame) -> None:
        row = ttk.Frame(body, padding=(12, 8, 0, 0))
        row.grid(row=3, column=1, sticky="ew")
        self.test_button = ttk.Button(row, text=_("Test connection"), command=self.test)
        self.test_button.pack(side="left")
        self.test_label = ttk.Label(row, text="", wraplength=460)
        self.test_label.pack(side="left", padx=(8, 0))

    def _buttons(self, body: ttk.Frame) -> None:
        row = ttk.Frame(body, padding=(0, 12, 0, 0))
        row.grid(row=4, column=0, columnspan=2, sticky="ew")
        self.status = ttk.Label(row, text="", style="Error.TLabel", wraplength=560)
        self.status.pack(side="left", fill="x", expand=True)
        ttk.Button(row, text=_("Cancel"), command=self.cancel).pack(side="right")
        self.save_button = ttk.Button(row, text=_("Save"), command=self.save)
        self.save_button.pack(side="right", padx=(0, 6))

    # -- lists ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw both lists; keep the current entry selected."""
        for kind in KINDS:
            box = self.lists[kind]
            box.delete(0, "end")
            for entry in self.entries[kind]:
                mark = "\u26a0 " if registries.entry_problems(entry) else ""
                box.insert("end", mark + (entry.label if entry.registry else _("(new registry)")))
            box.selection_clear(0, "end")
        if self.current is not None:
            kind, index = self.current
            self.lists[kind].selection_set(index)
            self.lists[kind].see(index)
        self.test_button.state(["!disabled"] if self.current else ["disabled"])

    def commit(self) -> None:
        """Take the form's fields into the current entry."""
        if self.current is not None:
            kind, index = self.current
            self.entries[kind][index] = self.form.read()

    def select(self, kind: Kind, index: int | None) -> None:
        self.commit()
        self.current = None if index is None else (kind, index)
        self.form.load(None if index is None else self.entries[kind][index])
        self.test_label.configure(text="")
        self.refresh()

    def _selected(self, kind: Kind) -> None:
        chosen = self.lists[kind].curselection()
        if chosen and self.current != (kind, chosen[0]):
            self.select(kind, chosen[0])

    def add(self, kind: Kind) -> None:
        self.commit()
        self.entries[kind].append(RegistryEntry())
        self.select(kind, len(self.entries[kind]) - 1)
        self.form.focus_field("registry")

    def edit(self, kind: Kind) -> None:
        chosen = self.lists[kind].curselection()
        if chosen:
            self.select(kind, chosen[0])
            self.form.focus_field("name")

    def remove(self, kind: Kind) -> None:
        chosen = self.lists[kind].curselection()
        if not chosen:
            return
        self.commit()
        del self.entries[kind][chosen[0]]
        self.current = None
        self.select(kind, None)

    # -- test, save, cancel ----------------------------------------------------------
    def test(self) -> None:
        """Test the entry in the form on a worker thread; the result shows when it comes."""
        if self.current is None:
            return
        self.commit()
        kind, index = self.current
        entry = self.entries[kind][index]
        self.test_button.state(["disabled"])
        self.test_label.configure(text=_("Testing…"), style="Hint.TLabel")
        work = threading.Thread(
            target=lambda: self.results.put(
                registries.test_entry(self.config_path, entry, TEST_TIMEOUT)
            ),
            name="imageferry-test-connection",
            daemon=True,
        )
        work.start()
        self.top.after(POLL_MS, self._poll)

    def _poll(self) -> None:
        if not self.top.winfo_exists():
            return
        try:
            report = self.results.get_nowait()
        except queue.Empty:
            self.top.after(POLL_MS, self._poll)
            return
        mark, style = ("\u2714 ", "Good.TLabel") if report.ok else ("\u2718 ", "Error.TLabel")
        self.test_label.configure(text=mark + report.message, style=style)
        self.test_button.state(["!disabled"])

    def save(self) -> None:
        """Check every entry; show the problems in place, or write cfg.yaml and close."""
        self.commit()
        problems = registries.check_entries(self.entries["source"], self.entries["target"])
        if problems:
            first = problems[0]
            self.select(first.kind, first.index)
            self.form.show_errors(
                {p.field: p.message for p in problems if (p.kind, p.index) == self.current}
            )
            self.form.focus_field(first.field)
            self.status.configure(text=_("Fix the fields marked in red, then save again."))
            return
        try:
            backup = registries.save_registries(
                self.config_path, self.entries["source"], self.entries["target"]
            )
        except ImageFerryError as exc:
            self.status.configure(text=str(exc))
            return
        if backup is not None:
            text = _("{path} could not be read as YAML; the old file is kept as {backup}.")
            messagebox.showinfo(
                _("Registries"),
                text.format(path=self.config_path, backup=backup),
                parent=self.top,
            )
        self.top.destroy()
        self.on_saved()

    def cancel(self) -> None:
        self.top.destroy()
