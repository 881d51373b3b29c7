"""How the window looks: DPI awareness, theme, a font family with CJK glyphs."""

from __future__ import annotations

import sys
import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

# First match wins; each has Chinese glyphs (Windows, macOS, Linux in that order).
UI_FAMILIES = (
    "Microsoft YaHei UI",
    "Microsoft YaHei",
    "PingFang SC",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
)
MONO_FAMILIES = (
    "Sarasa Mono SC",
    "Noto Sans Mono CJK SC",
    "WenQuanYi Micro Hei Mono",
    "Consolas",
    "Menlo",
)


def enable_dpi_awareness() -> None:
    """Per-monitor DPI awareness on Windows, before Tk starts (else text is blurry)."""
    if sys.platform != "win32":
        return
    try:
        import ctypes

        ctypes.windll.shcore.SetProcessDpiAwareness(2)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        pass


def pick_family(root: tk.Misc, wanted: tuple[str, ...]) -> str | None:
    have = set(tkfont.families(root))
    return next((f for f in wanted if f in have), None)


def apply_look(root: tk.Tk) -> str:
    """Theme and fonts; returns the family of the log font."""
    style = ttk.Style(root)
    theme = "vista" if sys.platform == "win32" else "clam"
    if theme in style.theme_names():
        style.theme_use(theme)
    ui = pick_family(root, UI_FAMILIES)
    if ui:
        for name in ("TkDefaultFont", "TkTextFont", "TkMenuFont", "TkHeadingFont", "TkCaptionFont"):
            tkfont.nametofont(name, root).configure(family=ui)
    mono = pick_family(root, MONO_FAMILIES)
    fixed = tkfont.nametofont("TkFixedFont", root)
    if mono:
        fixed.configure(family=mono)
    style.configure("Error.TLabel", foreground="#b00020")
    style.configure("Hint.TLabel", foreground="#555555")
    style.configure("Horizontal.TProgressbar", background="#2f7bd8")
    return str(fixed.actual("family"))
