"""The registry editor's form: one source or target, its problems shown beside each field."""

from __future__ import annotations

import tkinter as tk
from dataclasses import replace
from pathlib import Path
from tkinter import filedialog, ttk

from imageferry.i18n import _
from imageferry.jobs.registries import RegistryEntry

MASK = "\u2022"
TEXT_FIELDS = ("name", "registry", "user", "password", "repository", "ca_file")


def _labels() -> dict[str, str]:
    return {
        "name": _("Name"),
        "registry": _("Registry URL"),
        "user": _("User"),
        "password": _("Password"),
        "repository": _("Namespace (repository)"),
        "ca_file": _("CA file"),
    }


def _hints() -> dict[str, str]:
    return {
        "name": _("Optional; shown in the lists. Default: the registry's host."),
        "registry": _("For example https://registry.example.com or http://10.0.0.5:5000"),
        "user": _("Empty: anonymous, or docker's saved login for this host."),
        "password": _("${NAME} takes the password from that environment variable."),
        "repository": _("Optional: xxxx/image:tag is delivered as <namespace>/image:tag."),
    }


class RegistryForm(ttk.Frame):
    """Edits one :class:`RegistryEntry`; :meth:`read` returns it as the fields say now."""

    def __init__(self, master: tk.Misc, config_dir: Path, keyring_ok: bool) -> None:
        super().__init__(master, padding=(12, 4))
        self.config_dir = config_dir
        self.keyring_ok = keyring_ok
        self.entry = RegistryEntry()
        self.vars = {key: tk.StringVar(self) for key in TEXT_FIELDS}
        self.inputs: dict[str, ttk.Entry] = {}
        self.errors: dict[str, ttk.Label] = {}
        self.keep = tk.BooleanVar(self, value=keyring_ok)
        self.skip_tls = tk.BooleanVar(self, value=False)
        self.columnconfigure(1, weight=1)
        for row, key in enumerate(TEXT_FIELDS):
            self._field(row * 2, key)
        self.keep_box = ttk.Checkbutton(
            self, text=_("Keep the password in the OS keyring"), variable=self.keep
        )
        self.keep_box.grid(row=20, column=1, columnspan=2, sticky="w", pady=(6, 0))
        if not keyring_ok:
            self.keep_box.state(["disabled"])
            note = _("No OS keyring on this computer: a password is written into cfg.yaml.")
            ttk.Label(self, text=note, style="Hint.TLabel").grid(row=21, column=1, sticky="w")
        self.skip_box = ttk.Checkbutton(
            self, text=_("Skip TLS certificate verification"), variable=self.skip_tls
        )
        self.skip_box.grid(row=22, column=1, columnspan=2, sticky="w", pady=(2, 0))
        self.vars["password"].trace_add("write", lambda *_args: self._password_changed())
        self.set_enabled(False)

    def _field(self, row: int, key: str) -> None:
        ttk.Label(self, text=_labels()[key]).grid(row=row, column=0, sticky="w", padx=(0, 8))
        box = ttk.Entry(self, textvariable=self.vars[key], width=44)
        if key == "password":
            box.configure(show=MASK)
        box.grid(row=row, column=1, sticky="ew", pady=(4, 0))
        self.inputs[key] = box
        if key == "ca_file":
            browse = ttk.Button(self, text=_("Browse…"), command=self._choose_ca)
            browse.grid(row=row, column=2, padx=(6, 0), pady=(4, 0))
        note = ttk.Label(self, text=_hints().get(key, ""), style="Hint.TLabel", wraplength=420)
        note.grid(row=row + 1, column=1, columnspan=2, sticky="w")
        self.errors[key] = note

    def _password_changed(self) -> None:
        """A ``${VAR}`` reference is shown as typed and never kept in the keyring."""
        text = self.vars["password"].get().strip()
        is_env = text.startswith("${") and text.endswith("}")
        self.inputs["password"].configure(show="" if is_env else MASK)
        self.keep_box.state(["disabled"] if is_env or not self.keyring_ok else ["!disabled"])

    def _choose_ca(self) -> None:
        chosen = filedialog.askopenfilename(
            parent=self,
            title=_("Choose the registry's CA certificate"),
            initialdir=str(self.config_dir),
            filetypes=[(_("Certificates"), "*.pem *.crt *.cer"), (_("All files"), "*")],
        )
        if chosen:
            path = Path(chosen)
            try:
                text = str(path.resolve().relative_to(self.config_dir.resolve()))
            except ValueError:
                text = str(path)
            self.vars["ca_file"].set(text)

    def load(self, entry: RegistryEntry | None) -> None:
        """Show ``entry`` (None: an empty, disabled form)."""
        self.entry = entry or RegistryEntry()
        for key in TEXT_FIELDS:
            self.vars[key].set(getattr(self.entry, key))
        new = entry is not None and entry.origin is None and not entry.password
        self.keep.set(self.keyring_ok and (self.entry.keep_in_keyring or new))
        self.skip_tls.set(bool(self.entry.skiptlsverify))
        self.show_errors({})
        self.set_enabled(entry is not None)
        self._password_changed()

    def read(self) -> RegistryEntry:
        """The entry as the fields say (keeps what the form does not show)."""
        text = {key: self.vars[key].get().strip() for key in TEXT_FIELDS}
        skip = (
            True if self.skip_tls.get() else (None if self.entry.skiptlsverify is None else False)
        )
        return replace(
            self.entry,
            name=text["name"],
            registry=text["registry"],
            user=text["user"],
            password=self.vars["password"].get(),  # spaces may belong to a password
            repository=text["repository"],
            ca_file=text["ca_file"],
            skiptlsverify=skip,
            keep_in_keyring=self.keep.get() and self.keyring_ok,
        )

    def show_errors(self, problems: dict[str, str]) -> None:
        """Put each problem under its field (in red); fields without one show their hint."""
        hints = _hints()
        for key, label in self.errors.items():
            if key in problems:
                label.configure(text=problems[key], style="Error.TLabel")
            else:
                label.configure(text=hints.get(key, ""), style="Hint.TLabel")

    def set_enabled(self, enabled: bool) -> None:
        state = ["!disabled"] if enabled else ["disabled"]
        for box in self.inputs.values():
            box.state(state)
        self.skip_box.state(state)
        if not enabled or self.keyring_ok:
            self.keep_box.state(state)

    def focus_field(self, key: str) -> None:
        box = self.inputs.get(key) or self.inputs["registry"]
        box.focus_set()
        box.select_range(0, "end")
