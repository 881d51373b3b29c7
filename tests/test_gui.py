"""The window (issue 7), driven in-process under a private Xvfb against real registries.

Each test builds the real App, presses its keys with event_generate and turns
Tk's loop by hand (``pump``) until what it waits for shows, with a deadline.
Dialogs are answered by :class:`Answers` instead of a person.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied, get_manifest

tk = pytest.importorskip("tkinter", reason="this Python has no Tk (Debian: python3-tk)")
MB = 1024 * 1024


class Answers:
    """Stands in for the person at the window: records every dialog, answers as told."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, str]] = []
        self.meta: Path | None = None
        self.folder: Path | None = None
        self.yes = True

    def ask_meta(self, title: str, folder: str) -> Path | None:
        self.asked.append(("meta", title, folder))
        return self.meta

    def ask_folder(self, title: str, folder: str) -> Path | None:
        self.asked.append(("folder", title, folder))
        return self.folder

    def confirm(self, title: str, text: str) -> bool:
        self.asked.append(("confirm", title, text))
        return self.yes

    def error(self, title: str, text: str) -> None:
        self.asked.append(("error", title, text))

    def info(self, title: str, text: str) -> None:
        self.asked.append(("info", title, text))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.asked]


def cfg_text(source: str, target: str | None = None, extra: str = "") -> str:
    text = f"source:\n  - registry: {source}\n    name: src\n"
    if target:
        text += f"target:\n  - registry: {target}\n    name: dst\n"
    return text + extra


@pytest.fixture
def window(display, tmp_path):
    """Factory: the real window for a cfg.yaml (None: no file) in tmp_path/work."""
    from imageferry.gui.app import App

    made = []
    work = tmp_path / "work"
    work.mkdir()

    def make(cfg: str | None, lang: str = "en_US", folder: Path = work):
        path = folder / "cfg.yaml"
        if cfg is not None:
            path.write_text(cfg, encoding="utf-8")
        root = tk.Tk()
        app = App(root, path, lang)
        app.dialogs = Answers()  # type: ignore[assignment]
        made.append(root)
        pump(app, lambda: True)
        return app

    yield make
    for root in made:
        try:
            root.destroy()
        except tk.TclError:
            pass  # closed by the test
    made.clear()
    gc.collect()  # Tk variables must go on this thread, not in some worker's collection


def pump(app, until: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        app.root.update()
        if until():
            return
        assert time.monotonic() < deadline, f"timed out; log:\n{app.log.lines()}"
        time.sleep(0.02)


def press(app, key: str) -> None:
    app.list.text.focus_force()
    app.list.text.event_generate(key)
    app.root.update()


def idle(app) -> bool:
    return not app.runs.busy


def run_key(app, key: str, timeout: float = 90) -> None:
    press(app, key)
    assert app.runs.busy, f"{key} started nothing; log:\n{app.log.lines()}"
    pump(app, lambda: idle(app), timeout)


def test_check_f5_shows_a_row_per_line_and_offers_the_missing_one(window, source):
    app = window(cfg_text(source.url))
    app.list.set("# the samples\n" + source.list_text() + "no/such:1 -> other/name:2\n")
    run_key(app, "<F5>")
    rows = app.runs.checked
    assert len(rows) == 13
    assert sum(r.ok for r in rows) == 12
    missing = [r for r in rows if not r.ok]
    assert missing[0].line == 14 and missing[0].missing
    assert "1 failed" in app.status.stage.cget("text")
    assert "Images: 12/13 done, 1 failed" in app.status.counts.cget("text")
    assert app.status.numbers.cget("text") == ""  # a check moves no bytes
    assert app.retry.winfo_ismapped()
    app.retry.invoke()
    assert app.list.get().strip() == "no/such:1 -> other/name:2"  # as the user wrote it


def test_copy_f6_copies_byte_for_byte(window, source, new_registry):
    target = new_registry()
    app = window(cfg_text(source.url, target.url))
    app.list.set(source.list_text())
    run_key(app, "<F6>")
    assert "everything went through" in app.log.lines()
    snap = app.status.counts.cget("text")
    assert "dst: 12/12 done, 0 failed" in snap
    assert float(app.status.bar.cget("value")) == 1000
    for s in source.samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)


def test_watch_f9_keeps_the_target_in_step_until_f9_again(window, source, new_registry):
    target = new_registry()
    app = window(cfg_text(source.url, target.url, "interval: 1\n"))
    app.list.set("tools/t0:latest\n")
    press(app, "<F9>")
    assert app.runs.watching, app.log.lines()
    assert app.buttons["watch"].cget("text") == "Stop watching (F9)"
    assert app.buttons["watch"].instate(["!disabled"]) and app.buttons["copy"].instate(["disabled"])
    pump(app, lambda: "Round 1" in app.status.watch_note.cget("text"))
    assert "1 copied" in app.status.watch_note.cget("text")
    assert "next round at" in app.status.watch_note.cget("text")
    assert_image_copied(source.url, "tools/t0", "latest", target.url, "tools/t0")
    pump(app, lambda: "Round 2" in app.status.watch_note.cget("text"))
    assert "0 copied" in app.status.watch_note.cget("text")  # nothing new: nothing moved
    press(app, "<F9>")
    pump(app, lambda: idle(app), 30)
    assert "Stopped" in app.log.lines()
    assert app.buttons["watch"].cget("text") == "Watch (F9)"
    assert app.buttons["copy"].instate(["!disabled"])


def test_invalid_lines_are_marked_and_nothing_runs(window, source, new_registry):
    app = window(cfg_text(source.url, new_registry().url))
    app.list.set("demo/app0:1.0\nbad line:::\n\nUPPER/case:1\n")
    marked = app.list.text.tag_ranges("bad")
    assert [str(i) for i in marked] == ["2.0", "3.0", "4.0", "5.0"]
    message = app.list.message.cget("text")
    assert "line 2" in message and "line 4" in message
    press(app, "<F6>")
    assert not app.runs.busy
    assert "line 2" in app.log.lines()


def test_save_f7_then_load_f8_into_a_fresh_registry(window, source, new_registry, tmp_path):
    app = window(cfg_text(source.url, new_registry().url))
    out = tmp_path / "packages"
    app.dialogs.folder = out
    app.change_folder()
    app.list.set("\n".join(s.line for s in source.samples[:5]) + "\n")
    run_key(app, "<F7>")
    metas = list(out.glob("*/*_meta.yaml"))
    assert len(metas) == 1, app.log.lines()

    fresh = new_registry()
    loader = window(cfg_text(source.url, fresh.url), folder=tmp_path)
    loader.dialogs.meta = metas[0]
    press(loader, "<F8>")
    pump(loader, lambda: idle(loader) and "confirm" in loader.dialogs.kinds())
    question = loader.dialogs.asked[-1][2]
    assert "Kind: full" in question and "Images (5):" in question and "demo/app0:1.0" in question
    pump(loader, lambda: idle(loader))
    assert "everything went through" in loader.log.lines()
    for s in source.samples[:5]:
        assert_image_copied(source.url, s.repository, s.tag, fresh.url, s.repository)


def test_a_damaged_package_is_refused_and_nothing_pushed(window, source, new_registry, tmp_path):
    app = window(cfg_text(source.url, new_registry().url))
    app.top.save_folder.set(str(tmp_path / "out"))
    app.list.set("demo/app1:1.0\n")
    run_key(app, "<F7>")
    meta = next((tmp_path / "out").glob("*/*_meta.yaml"))
    data = next(p for p in meta.parent.iterdir() if p.suffix == ".tar")
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size: only the sha256 check can tell
    data.write_bytes(bytes(raw))

    fresh = new_registry()
    loader = window(cfg_text(source.url, fresh.url), folder=tmp_path)
    loader.dialogs.meta = meta
    press(loader, "<F8>")
    pump(loader, lambda: "error" in loader.dialogs.kinds() and idle(loader))
    kind, title, text = loader.dialogs.asked[-1]
    assert title == "Damaged package" and data.name in text
    assert get_manifest(fresh.url, "demo/app1", "1.0") is None

    missing = window(cfg_text(source.url, fresh.url), folder=tmp_path)
    missing.dialogs.meta = tmp_path / "nothing_meta.yaml"
    press(missing, "<F8>")
    assert missing.dialogs.kinds()[-1] == "error" and not missing.runs.busy


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("slow"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    layers = [make_layer(f"gui-{i}", 2 * MB, level=0) for i in range(4)]
    manifest, blobs = make_image(layers)
    push_image(client, "big/gui", "1", manifest, blobs)
    client.close()
    slow = lambda m, p, n: Fault(rate=2 * MB) if "/blobs/" in p else None  # noqa: E731
    proxy = FaultProxy(server.port, slow)
    yield server, proxy, slow
    proxy.stop()
    server.stop()


def test_esc_stops_a_copy_and_f6_resumes_it(window, slow_source, new_registry):
    server, proxy, slow = slow_source
    proxy.rule = slow
    target = new_registry()
    app = window(cfg_text(proxy.url, target.url, "maxconn: 1\n"))
    app.list.set("big/gui:1\n")
    press(app, "<F6>")
    job = app.runs.job
    pump(app, lambda: job.progress.snapshot().bytes_read >= 3 * MB)
    press(app, "<Escape>")
    pump(app, lambda: idle(app), 30)
    assert job.result is not None and job.result.cancelled
    assert "Stopped" in app.status.stage.cget("text")
    assert "dst: 0/1 done, 0 failed, 1 stopped" in app.status.counts.cget("text")
    assert "– left" in app.status.numbers.cget("text")  # no time left for a stopped job
    assert "resume" in app.log.lines()
    assert get_manifest(target.url, "big/gui", "1") is None

    proxy.rule = lambda m, p, n: None  # full speed for the rerun
    run_key(app, "<F6>")
    assert "everything went through" in app.log.lines()
    assert_image_copied(server.url, "big/gui", "1", target.url, "big/gui")


def test_closing_during_a_job_asks_then_stops_it(window, slow_source, new_registry):
    server, proxy, slow = slow_source
    proxy.rule = slow
    app = window(cfg_text(proxy.url, new_registry().url, "maxconn: 1\n"))
    app.list.set("big/gui:1\n")
    press(app, "<F6>")
    job = app.runs.job
    pump(app, lambda: job.progress.snapshot().bytes_read > 0)
    app.dialogs.yes = False
    app.close()
    assert app.root.winfo_exists() and job.running  # "no": nothing happens
    app.dialogs.yes = True
    app.close()
    assert app.dialogs.kinds() == ["confirm", "confirm"]
    assert job.stopped and app.root.winfo_exists()  # the window stays alive while it stops
    deadline = time.monotonic() + 30
    with pytest.raises(tk.TclError):  # then it closes by itself
        while time.monotonic() < deadline:
            app.root.update()
            app.root.winfo_exists()
            time.sleep(0.02)
    assert not job.running


def test_a_broken_cfg_yaml_still_opens_and_says_what_is_wrong(window):
    app = window("source:\n  - registry: http://127.0.0.1:5000\n    colour: red\n")
    shown = app.config_message.cget("text")
    assert "line 3" in shown and "colour" in shown and "unknown key" in shown
    assert app.config_message.winfo_ismapped()
    pump(app, lambda: "confirm" in app.dialogs.kinds(), 10)  # the editor is offered
    assert "Open the registry editor" in app.dialogs.asked[0][2]
    assert "imageferry" in app.root.title()


def test_no_cfg_yaml_opens_and_copy_says_what_to_do(window):
    app = window(None)
    assert "cfg.yaml" in app.config_message.cget("text")
    app.list.set("demo/app0:1.0\n")
    press(app, "<F6>")
    assert not app.runs.busy and "choose a" in app.log.lines()


def test_registries_button_opens_the_editor_lazily(window, monkeypatch):
    calls = []
    editor = types.ModuleType("imageferry.gui.registry_editor")
    editor.open_registry_editor = lambda parent, path, on_saved: calls.append((path, on_saved))
    monkeypatch.setitem(sys.modules, "imageferry.gui.registry_editor", editor)
    app = window("source: []\n")
    app.top.registries.invoke()
    assert calls and calls[0][0] == app.config_path


@pytest.mark.parametrize(
    ("lang", "texts"),
    [
        ("zh_CN", ["校验 (F5)", "直传 (F6)", "监控 (F9)", "下载 (F7)", "上传 (F8)", "停止 (Esc)"]),
        (
            "en_US",
            ["Check (F5)", "Copy (F6)", "Watch (F9)", "Save (F7)", "Load (F8)", "Stop (Esc)"],
        ),
    ],
)
def test_buttons_in_both_languages(window, source, lang, texts):
    app = window(cfg_text(source.url), lang=lang)
    assert [b.cget("text") for b in app.buttons.values()] == texts
    assert "imageferry" in app.root.title()
    assert app.top.registries.cget("text") == ("仓库设置…" if lang == "zh_CN" else "Registries…")


def test_the_list_and_choices_survive_a_restart(window, source, tmp_path):
    app = window(cfg_text(source.url))
    app.list.text.insert("1.0", "demo/app2:1.0 -> mine/app:2\n")
    pump(app, lambda: (tmp_path / "work" / "imageferry-gui.json").is_file(), 10)
    app.root.destroy()
    again = window(None)
    assert again.list.get().strip() == "demo/app2:1.0 -> mine/app:2"


def test_ctrl_l_focuses_the_list_and_ctrl_q_quits(window, source):
    app = window(cfg_text(source.url))
    app.top.registries.focus_force()
    app.top.registries.event_generate("<Control-l>")
    app.root.update()
    assert app.root.focus_get() is app.list.text
    app.list.text.event_generate("<Control-q>")
    with pytest.raises(tk.TclError):
        app.root.winfo_exists()
    assert app.dialogs.asked == []  # nothing running: no question


def test_the_log_follows_new_lines_unless_scrolled_up(window):
    app = window(None)
    for i in range(300):
        app.log.add(f"line {i}")
    app.root.update()
    assert app.log.yview()[1] == 1.0
    app.log.yview_moveto(0)
    app.log.add("one more")
    app.root.update()
    assert app.log.yview()[0] == 0.0  # the reader keeps the place
    app.log.yview_moveto(1)
    app.log.add("and another")
    app.root.update()
    assert app.log.yview()[1] == 1.0


def test_without_the_registry_editor_the_button_says_what_to_edit(window, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageferry.gui.registry_editor", None)  # import fails
    app = window("source: []\n")
    app.top.registries.invoke()
    kind, _title, text = app.dialogs.asked[-1]
    assert kind == "info" and str(app.config_path) in text


def test_the_log_keeps_the_latest_lines_only(window, monkeypatch):
    app = window(None)
    monkeypatch.setattr(app.log, "MAX_LINES", 50)
    for i in range(120):
        app.log.add(f"line {i}")
    kept = app.log.lines().splitlines()
    assert len(kept) == 50 and kept[0] == "line 70" and kept[-1] == "line 119"
