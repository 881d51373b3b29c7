#!/usr/bin/env python3
"""Screenshots of the window for docs/: idle, copying, done with a failure, in zh_CN and en_US.

Needs Xvfb and ImageMagick's ``import`` (not installed by setup.sh: only for
refreshing these pictures). Runs local registries on 127.0.0.1 like the tests.

    .venv/bin/python scripts/gui-screenshots.py
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from imageferry.core.config import RegistryConfig  # noqa: E402
from imageferry.registry import Registry  # noqa: E402
from imageferry.testing.images import make_image, make_layer, push_image, push_sample_set  # noqa: E402
from imageferry.testing.registry_server import start_registry  # noqa: E402
from support.faultproxy import Fault, FaultProxy  # noqa: E402
from support.xvfb import xvfb  # noqa: E402

MB = 1024 * 1024
W, H = 1180, 720


def pump(root, until, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        root.update()
        time.sleep(0.03)
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
    for _ in range(10):
        root.update()
        time.sleep(0.02)


def shoot(name: str) -> None:
    out = ROOT / "docs" / f"gui-{name}.png"
    subprocess.run(["import", "-window", "root", str(out)], check=True, timeout=30)
    print("wrote", out)


def one_language(lang: str, work: Path, proxy: FaultProxy, targets: list[str], samples) -> None:
    import tkinter as tk

    from imageferry.gui.app import App

    folder = work / lang
    folder.mkdir()
    names = ("内网仓库", "备份仓库") if lang == "zh_CN" else ("airgap", "backup")
    (folder / "cfg.yaml").write_text(
        f"source:\n  - registry: {proxy.url}\n    name: harbor-dev\n"
        "target:\n"
        + "".join(
            f"  - registry: {url}\n    name: {n}\n" for url, n in zip(targets, names, strict=True)
        )
        + "maxconn: 2\ncache:\n  pathname: cache\n",
        encoding="utf-8",
    )
    root = tk.Tk()
    app = App(root, folder / "cfg.yaml", lang)
    root.geometry(f"{W}x{H}+0+0")
    app.top.set_targets(list(names), list(names))  # deliver to both
    lines = "\n".join(s.line for s in samples[:6])
    app.list.set(f"# release 2.4\n{lines}\nbig/model:1 -> ai/model:2024\nno/such:1\n")
    pump(root, lambda: True)
    shoot(f"{lang}-idle")
    proxy.rule = lambda m, p, n: Fault(rate=MB) if "/blobs/" in p else None
    app.copy()
    pump(
        root,
        lambda: app.runs.job is not None and app.runs.job.progress.snapshot().bytes_read > 3 * MB,
    )
    shoot(f"{lang}-copying")
    proxy.rule = lambda m, p, n: None
    pump(root, lambda: not app.runs.busy)
    shoot(f"{lang}-done-failed")
    root.destroy()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, xvfb(W, H) as display:
        os.environ["DISPLAY"] = display
        work = Path(tmp)
        server = start_registry(work / "src")
        client = Registry(RegistryConfig(registry=server.url), writable=True)
        samples = push_sample_set(client)
        layers = [make_layer(f"shot-{i}", 3 * MB, level=0) for i in range(3)]
        manifest, blobs = make_image(layers)
        push_image(client, "big/model", "1", manifest, blobs)
        client.close()
        proxy = FaultProxy(server.port)
        try:
            for lang in ("zh_CN", "en_US"):
                targets = [start_registry(work / f"dst{k}-{lang}") for k in (1, 2)]
                try:
                    one_language(lang, work, proxy, [t.url for t in targets], samples)
                    gc.collect()  # Tk variables must go on this thread, not a worker's
                finally:
                    for target in targets:
                        target.stop()
        finally:
            proxy.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
