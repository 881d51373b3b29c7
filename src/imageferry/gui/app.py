"""The main window: assembly, shortcuts, the handlers of the five buttons, closing."""

from __future__ import annotations

import time
import tkinter as tk
from collections.abc import Callable
from pathlib import Path
from tkinter import ttk
from typing import Any

from imageferry.core.config import Config, load_config
from imageferry.core.errors import ConfigError, ImageFerryError
from imageferry.gui import actions
from imageferry.gui.dialogs import Dialogs
from imageferry.gui.look import apply_look
from imageferry.gui.runs import Runs
from imageferry.gui.state import STATE_NAME, GuiState
from imageferry.gui.toprow import TopRow
from imageferry.gui.widgets import ListBox, LogView, StatusPanel
from imageferry.i18n import _, set_language
from imageferry.jobs.check import PackageReport
from imageferry.jobs.inputs import ImageList
from imageferry.jobs.runner import BackgroundJob

SAVE_STATE_MS = 1000
CLOSE_WAIT_S = 15.0


def read_config(path: Path) -> tuple[Config, str | None]:
    """cfg.yaml, or an empty config and what is wrong with the file."""
    if not path.is_file():
        return Config(), _("No {path} yet: add registries with “Registries…”.").format(path=path)
    try:
        return load_config(path), None
    except ConfigError as exc:
        return Config(), str(exc)


def _handler(action: Callable[[], object]) -> Callable[[tk.Event], str]:
    def handle(_event: tk.Event) -> str:
        action()
        return "break"

    return handle


class App:
    BUTTONS = (
        ("check", "Check", "F5"),
        ("copy", "Copy", "F6"),
        ("watch", "Watch", "F9"),
        ("save", "Save", "F7"),
        ("load", "Load", "F8"),
        ("stop", "Stop", "Esc"),
    )

    def __init__(self, root: tk.Tk, config_path: Path, lang: str | None = None) -> None:
        self.root = root
        self.config_path = config_path
        self.config, self.config_error = read_config(config_path)
        chosen = set_language(lang or self.config.lang)
        # Tk's own dialogs (Yes/No, the file chooser) speak the same language
        root.tk.call("::msgcat::mclocale", "zh_cn" if chosen == "zh_CN" else "en")
        self.dialogs = Dialogs(root)
        self.state_path = config_path.parent / STATE_NAME
        self.state = GuiState.load(self.state_path)
        self.runs = Runs(self)
        self._save_pending: str | None = None
        apply_look(root)
        root.title(_("imageferry — move container images"))
        root.minsize(900, 560)
        root.geometry("1180x720")
        self._build()
        self._bind_keys()
        root.protocol("WM_DELETE_WINDOW", self.close)
        self._restore()
        self.set_busy(False)
        if self.config_error:
            root.after(300, self._offer_editor)

    # building -----------------------------------------------------------------
    def _build(self) -> None:
        outer = ttk.Frame(self.root, padding=8)
        outer.pack(fill="both", expand=True)
        self.top = TopRow(outer, self.open_registries)
        self.top.pack(fill="x")
        self.config_message = ttk.Label(outer, text="", style="Error.TLabel", justify="left")
        panes = ttk.PanedWindow(outer, orient="horizontal")
        panes.pack(fill="both", expand=True, pady=(6, 0))
        self._panes = panes
        left = ttk.Frame(panes)
        self.list = ListBox(left, self._list_changed)
        self.list.pack(fill="both", expand=True)
        self._build_buttons(left)
        right = ttk.Frame(panes)
        self.log = LogView(right)
        self.log.pack(fill="both", expand=True)
        self.status = StatusPanel(right)
        self.status.pack(fill="x", pady=(6, 0))
        self.retry = ttk.Button(right, text=_("Retry failed"), command=self.retry_failed)
        panes.add(left, weight=2)
        panes.add(right, weight=3)

    def _build_buttons(self, parent: ttk.Frame) -> None:
        row = ttk.Frame(parent)
        row.pack(fill="x", pady=(6, 0))
        self.buttons: dict[str, ttk.Button] = {}
        for name, label, key in self.BUTTONS:
            button = ttk.Button(row, text=f"{_(label)} ({key})", command=getattr(self, name))
            button.pack(side="left", padx=(0, 4))
            self.buttons[name] = button
        folder_row = ttk.Frame(parent)
        folder_row.pack(fill="x", pady=(6, 0))
        ttk.Label(folder_row, text=_("Save to:")).pack(side="left")
        ttk.Label(folder_row, textvariable=self.top.save_folder, style="Hint.TLabel").pack(
            side="left", fill="x", expand=True, padx=4
        )
        ttk.Button(folder_row, text=_("Change folder…"), command=self.change_folder).pack(
            side="right"
        )

    def _bind_keys(self) -> None:
        keys = {"<F5>": self.check, "<F6>": self.copy, "<F7>": self.save, "<F8>": self.load}
        keys |= {"<F9>": self.watch}
        keys |= {"<Escape>": self.stop, "<Control-q>": self.close}
        keys |= {"<Control-l>": self.list.text.focus_set}
        for key, handler in keys.items():
            self.root.bind_all(key, _handler(handler))

    def _restore(self) -> None:
        self.top.fill(self.config, self.state.source, self.state.targets)
        self.top.save_folder.set(self.state.save_folder or str(self.config_path.parent))
        self.list.set(self.state.list_text)
        self._show_config_error()
        if self.config_error:
            self.log.add(self.config_error, "error")

    # state ----------------------------------------------------------------------
    def _list_changed(self) -> None:
        if self._save_pending:
            self.root.after_cancel(self._save_pending)
        self._save_pending = self.root.after(SAVE_STATE_MS, self.save_state)

    def save_state(self) -> None:
        self._save_pending = None
        choices = self.top.choices()
        self.state.list_text = self.list.get()
        self.state.source = choices.source or ""
        self.state.targets = list(choices.targets)
        self.state.save_folder = self.top.save_folder.get()
        if not self.state.save(self.state_path):
            self.log.add(_("Cannot write {path}").format(path=self.state_path), "warning")

    # the buttons ------------------------------------------------------------------
    def _images(self) -> ImageList | None:
        images = self.list.validate()
        if images is None:
            self.log.add(self.list.message.cget("text"), "error")
        return images

    def _run(self, build: Any, *args: Any, then: Any = None) -> None:
        if self.runs.busy:
            return
        self.show_retry(False)
        try:
            job = build(self.config, *args)
        except ImageFerryError as exc:
            self.log.add(str(exc), "error")
            self.status.say(_("Not started"))
            return
        self.save_state()
        self.runs.start(job, args[0] if args and isinstance(args[0], ImageList) else None, then)

    def check(self) -> None:
        images = self._images()
        if images is not None:
            self._run(actions.check_job, images, self.top.choices())

    def copy(self) -> None:
        images = self._images()
        if images is not None:
            self._run(actions.copy_job, images, self.top.choices())

    def watch(self) -> None:
        """监控 toggles: starts following the list's tags, or stops a running watch."""
        if self.runs.watching:
            self.runs.stop()
            return
        images = self._images()
        if images is not None:
            self._run(actions.watch_job, images, self.top.choices())

    def save(self) -> None:
        images = self._images()
        if images is None or self.runs.busy:
            return
        base = None
        if self.top.incremental.get():
            base = self.dialogs.ask_meta(_("The earlier package (…_meta.yaml)"), self._pkg_dir())
            if base is None:
                return
            self.state.package_folder = str(base.parent)
        self._run(actions.save_job, images, self.top.choices(), base)

    def load(self) -> None:
        if self.runs.busy:
            return
        meta = self.dialogs.ask_meta(_("The package to load (…_meta.yaml)"), self._pkg_dir())
        if meta is None:
            return
        self.state.package_folder = str(meta.parent)
        try:
            job = actions.inspect_job(self.config, meta)
        except ImageFerryError as exc:
            self.log.add(str(exc), "error")
            self.dialogs.error(_("Not a package"), str(exc))
            return
        self.runs.start(job, None, lambda done: self._confirm_load(meta, done))

    def _confirm_load(self, meta: Path, done: BackgroundJob[Any]) -> None:
        if not isinstance(done.result, PackageReport):
            return
        text = actions.describe_package(done.result)
        self.log.add(text)
        target = ", ".join(self.top.targets()) or "?"
        question = text + "\n\n" + _("Push these images to {target}?").format(target=target)
        if self.dialogs.confirm(_("Load package"), question):
            self._run(actions.load_job, meta, self.top.choices())
        else:
            self.status.say(_("Not started"))

    def _pkg_dir(self) -> str:
        return self.state.package_folder or self.top.save_folder.get()

    def stop(self) -> None:
        self.runs.stop()

    def change_folder(self) -> None:
        folder = self.dialogs.ask_folder(_("Save packages in"), self.top.save_folder.get())
        if folder is not None:
            self.top.save_folder.set(str(folder))
            self.save_state()

    def retry_failed(self) -> None:
        if self.runs.retry_lines:
            self.list.set("\n".join(self.runs.retry_lines) + "\n")
            self.save_state()
        self.show_retry(False)

    # shown by the runs -------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        watching = self.runs.watching
        for name, button in self.buttons.items():
            on = busy if name == "stop" else not busy or (name == "watch" and watching)
            button.state(["!disabled"] if on else ["disabled"])
        label = _("Stop watching") if watching else _("Watch")
        self.buttons["watch"].configure(text=f"{label} (F9)")

    def show_retry(self, show: bool) -> None:
        if show:
            self.retry.pack(anchor="e", pady=(4, 0))
        else:
            self.retry.pack_forget()

    def job_title(self, name: str) -> str:
        titles = {"check": "Check", "copy": "Copy", "save": "Save", "load": "Load"}
        titles["watch"] = "Watch"
        return _(titles.get(name, "Package check"))

    # registries and closing ---------------------------------------------------------
    def open_registries(self) -> None:
        try:
            from imageferry.gui.registry_editor import open_registry_editor
        except ImportError:
            self.dialogs.info(
                _("Registries"),
                _("The registry editor is not part of this build; edit {path}.").format(
                    path=self.config_path
                ),
            )
            return
        open_registry_editor(self.root, self.config_path, self.reload_config)

    def _offer_editor(self) -> None:
        question = (self.config_error or "") + "\n\n" + _("Open the registry editor now?")
        if self.dialogs.confirm(_("Registries"), question):
            self.open_registries()

    def reload_config(self) -> None:
        self.config, self.config_error = read_config(self.config_path)
        self._restore_pickers()

    def _restore_pickers(self) -> None:
        choices = self.top.choices()
        self.top.fill(self.config, choices.source or "", list(choices.targets))
        self._show_config_error()

    def _show_config_error(self) -> None:
        """cfg.yaml's problem above the panes, with the editor offered; hidden when fine."""
        self.config_message.configure(text=self.config_error or "")
        if self.config_error:
            self.config_message.pack(fill="x", anchor="w", before=self._panes, pady=(4, 0))
        else:
            self.config_message.pack_forget()

    def close(self) -> None:
        job = self.runs.job
        if job is not None:
            question = _("A job is running. Stop it and quit?")
            if not self.dialogs.confirm(_("Quit"), question):
                return
            self.runs.stop()
            self._close_when_stopped(time.monotonic() + CLOSE_WAIT_S)
            return
        self.save_state()
        self.root.destroy()

    def _close_when_stopped(self, deadline: float) -> None:
        """Keep the window alive (and painting) while the job stops; then close it."""
        job = self.runs.job
        if job is not None and job.running and time.monotonic() < deadline:
            self.root.after(100, self._close_when_stopped, deadline)
            return
        self.save_state()
        self.root.destroy()
