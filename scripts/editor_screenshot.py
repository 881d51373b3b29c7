"""Screenshot of the registry editor for the docs: run under an X server (Xvfb).

    DISPLAY=:N .venv/bin/python scripts/editor_screenshot.py zh_CN docs/registry-editor-zh_CN.png

The cfg.yaml shown is a sample with one mistake in it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tkinter as tk
from pathlib import Path
from tkinter import font as tkfont

import imageferry.i18n as i18n
from imageferry.gui.registry_editor import RegistryEditor

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """\
source:
- name: company
  registry: "http://10.45.80.1"
target:
- name: site
  registry: "https://10.45.46.109"
  user: admin
  password: ${SITE_PASSWORD}
  repository: yyyy
  skiptlsverify: true
- name: lab
  registry: "http://127.0.0.1:9"
  user: deployer
  pasword: typo
maxconn: 5
"""


def use_language(lang: str) -> None:
    i18n.set_language(lang)


def main(lang: str, out: Path) -> None:
    use_language(lang)
    root = tk.Tk()
    root.withdraw()
    if "WenQuanYi Micro Hei" in tkfont.families(root):
        for name in ("TkDefaultFont", "TkTextFont", "TkHeadingFont"):
            tkfont.nametofont(name, root).configure(family="WenQuanYi Micro Hei")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cfg.yaml"
        path.write_text(SAMPLE, encoding="utf-8")
        editor = RegistryEditor(root, path, lambda: None)
        editor.top.geometry("+0+0")
        editor.lists["target"].selection_set(1)
        editor._selected("target")
        editor.test()
        for _ in range(100):  # until the test result is shown
            root.update()
            root.after(50)
            if "Test" not in str(editor.test_label.cget("text")) and editor.results.empty():
                if str(editor.test_label.cget("text"))[:1] in ("\u2714", "\u2718"):
                    break
        root.update()
        width, height = editor.top.winfo_width(), editor.top.winfo_height()
        crop = f"{width}x{height}+0+0"
        subprocess.run(["import", "-window", "root", "-crop", crop, str(out)], check=True)
    root.destroy()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
