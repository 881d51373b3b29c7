"""The window's parts: the image list with validation, the live log, the status panel."""

from __future__ import annotations

import re
import tkinter as tk
from collections.abc import Callable
from tkinter import ttk
from tkinter.scrolledtext import ScrolledText

from imageferry.core.errors import InputError
from imageferry.i18n import _
from imageferry.jobs.inputs import ImageList, parse_list
from imageferry.jobs.progress import ProgressSnapshot

LIST_ORIGIN = "image list"
_LINE_RE = re.compile(r"^" + re.escape(LIST_ORIGIN) + r", line (\d+):", re.MULTILINE)
DEBOUNCE_MS = 400


class ListBox(ttk.Frame):
    """A Text box for the image list; bad lines turn red, the reason shows underneath."""

    def __init__(self, parent: tk.Misc, on_change: Callable[[], None]) -> None:
        super().__init__(parent)
        self._on_change = on_change
        self._pending: str | None = None
        ttk.Label(self, text=_("Images, one per line (# comment, src -> new:tag renames)")).pack(
            anchor="w"
        )
        self.text = ScrolledText(self, width=42, height=12, undo=True, wrap="none")
        self.text.configure(font="TkFixedFont")
        self.text.pack(fill="both", expand=True)
        self.text.tag_configure("bad", background="#ffd6d6")
        self.message = ttk.Label(self, text="", style="Hint.TLabel", wraplength=380, justify="left")
        self.message.pack(fill="x", anchor="w")
        self.text.bind("<<Modified>>", self._modified)

    def get(self) -> str:
        return self.text.get("1.0", "end-1c")

    def set(self, text: str) -> None:
        self.text.delete("1.0", "end")
        self.text.insert("1.0", text)
        self.validate()

    def _modified(self, _event: tk.Event) -> None:
        if not self.text.edit_modified():
            return
        self.text.edit_modified(False)
        if self._pending:
            self.after_cancel(self._pending)
        self._pending = self.after(DEBOUNCE_MS, self.validate)

    def validate(self) -> ImageList | None:
        """Parse now: mark bad lines and return the list, or None when it cannot run."""
        if self._pending:
            self.after_cancel(self._pending)
            self._pending = None
        self.text.tag_remove("bad", "1.0", "end")
        self._on_change()
        try:
            images = parse_list(self.get(), LIST_ORIGIN)
        except InputError as exc:
            text = str(exc)
            for number in _LINE_RE.findall(text):
                self.text.tag_add("bad", f"{number}.0", f"{number}.end+1c")
            bad = bool(_LINE_RE.search(text))
            self.message.configure(
                text=text if bad else _("Type or paste images, one per line."),
                style="Error.TLabel" if bad else "Hint.TLabel",
            )
            return None
        count = len(images.entries)
        self.message.configure(text=_("{count} image(s)").format(count=count), style="Hint.TLabel")
        return images


class LogView(ScrolledText):
    """Read-only, copyable; follows new lines unless the user scrolled up to read."""

    COLOURS = {"info": "#202020", "warning": "#9a6700", "error": "#b00020", "ok": "#1a7f37"}
    MAX_LINES = 20000  # a watch left running for weeks must not grow the window without bound

    def __init__(self, parent: tk.Misc) -> None:
        super().__init__(parent, width=70, height=16, wrap="word", state="disabled")
        self.configure(font="TkFixedFont")
        for level, colour in self.COLOURS.items():
            self.tag_configure(level, foreground=colour)
        # disabled Text still selects; give it focus on click so Ctrl+C copies
        self.bind("<1>", lambda e: self.focus_set())

    def add(self, text: str, level: str = "info") -> None:
        follow = self.yview()[1] >= 0.999
        self.configure(state="normal")
        self.insert("end", text.rstrip("\n") + "\n", level)
        excess = int(self.index("end-1c").split(".")[0]) - 1 - self.MAX_LINES
        if excess > 0:  # the whole run is in imageferry.log; the window keeps the latest
            self.delete("1.0", f"{excess + 1}.0")
        self.configure(state="disabled")
        if follow:
            self.see("end")

    def lines(self) -> str:
        return self.get("1.0", "end-1c")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class StatusPanel(ttk.Frame):
    """Counts per target, bytes, speed, ETA and a progress bar, from a ProgressSnapshot."""

    def __init__(self, parent: tk.Misc) -> None:
        super().__init__(parent)
        self.stage = ttk.Label(self, text=_("Ready"))
        self.stage.grid(row=0, column=0, sticky="w")
        self.counts = ttk.Label(self, text="", justify="left")
        self.counts.grid(row=1, column=0, sticky="w")
        self.numbers = ttk.Label(self, text="")
        self.numbers.grid(row=2, column=0, sticky="w")
        self.bar = ttk.Progressbar(self, mode="determinate", maximum=1000)
        self.bar.grid(row=3, column=0, sticky="ew", pady=(2, 0))
        self.watch_note = ttk.Label(self, text="", style="Hint.TLabel")
        self.columnconfigure(0, weight=1)

    def show(self, snap: ProgressSnapshot, running: bool = True) -> None:
        stages = {
            "planning": _("Planning"),
            "transferring": _("Transferring"),
            "verifying": _("Verifying the package"),
            "finishing": _("Finishing the package"),
        }
        self.stage.configure(text=stages.get(snap.stage, snap.stage))
        rows = [
            _("{name}: {done}/{total} done, {failed} failed").format(
                name=_("package") if t.name in ("", "package") else t.name,
                done=t.delivered,
                total=t.total,
                failed=t.failed,
            )
            + (_(", {stopped} stopped").format(stopped=t.stopped) if t.stopped else "")
            for t in snap.targets
        ] or [
            _("Images: {done}/{total} done, {failed} failed").format(
                done=snap.images_done - snap.images_failed,  # as for targets: what got through
                total=snap.images_total,
                failed=snap.images_failed,
            )
        ]
        self.counts.configure(text="\n".join(rows))
        moved = snap.bytes_total or snap.bytes_read  # a check moves no bytes: say nothing
        self.numbers.configure(
            text=_("{done} of {total} · {speed}/s · {eta} left").format(
                done=human_bytes(snap.bytes_done),
                total=human_bytes(snap.bytes_total),
                speed=human_bytes(snap.speed),
                eta=human_seconds(snap.eta if running else None),
            )
            if moved
            else ""
        )
        fraction = snap.fraction
        self.bar.configure(value=0 if fraction is None else fraction * 1000)

    def say(self, text: str) -> None:
        self.stage.configure(text=text)

    def note(self, text: str) -> None:
        """The last watch round and the next one's time (hidden when empty)."""
        self.watch_note.configure(text=text)
        if text:
            self.watch_note.grid(row=4, column=0, sticky="w", pady=(2, 0))
        else:
            self.watch_note.grid_remove()
