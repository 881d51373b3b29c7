"""The window delivers to one or several targets, as the command line's repeated --to does.

Named to run after test_gui.py and before test_registry_editor_gui.py (see
test_gui_split_option.py for why).
"""

from __future__ import annotations

import json

import test_gui
from imageferry.gui.state import STATE_NAME
from support.verify import assert_image_copied
from test_gui import run_key

window = test_gui.window  # the window tests' fixture


def two_targets(source: str, dst: str, backup: str) -> str:
    return (
        f"source:\n  - registry: {source}\n    name: src\n"
        f"target:\n  - registry: {dst}\n    name: dst\n"
        f"  - registry: {backup}\n    name: backup\n"
    )


def test_copy_f6_delivers_to_every_ticked_target(window, source, new_registry):
    dst, backup = new_registry(), new_registry()
    app = window(two_targets(source.url, dst.url, backup.url))
    assert app.top.targets() == ["dst"]  # the first one, until the user ticks more
    app.top._target_menu.invoke(1)  # tick "backup" in the drop-down
    assert app.top.targets() == ["dst", "backup"]
    assert app.top.target_button.cget("text") == "dst, backup"
    app.list.set(source.list_text())
    run_key(app, "<F6>")
    counts = app.status.counts.cget("text")
    assert "dst: 12/12 done, 0 failed" in counts and "backup: 12/12 done, 0 failed" in counts
    for s in source.samples:
        for target in (dst, backup):
            assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)


def test_no_target_ticked_is_said_and_nothing_starts(window, source, new_registry):
    app = window(two_targets(source.url, new_registry().url, new_registry().url))
    app.top._target_menu.invoke(0)  # untick "dst": none is left
    assert app.top.targets() == [] and app.top.target_button.cget("text") == "(none)"
    app.list.set(source.list_text())
    test_gui.press(app, "<F6>")
    assert not app.runs.busy
    assert "choose a target registry first" in app.log.lines()


def test_the_ticked_targets_are_remembered_and_an_old_state_file_still_reads(
    window, source, new_registry, tmp_path
):
    state = tmp_path / "work" / STATE_NAME
    state.write_text(json.dumps({"source": "src", "target": "backup"}))  # one-target era
    app = window(two_targets(source.url, new_registry().url, new_registry().url))
    assert app.top.targets() == ["backup"]
    app.top._target_menu.invoke(0)
    app.save_state()
    assert json.loads(state.read_text())["targets"] == ["dst", "backup"]


def test_a_target_short_of_images_is_said_in_the_windows_language(window, source, new_registry):
    app = window(two_targets(source.url, new_registry().url, new_registry().url), lang="zh_CN")
    app.top._target_menu.invoke(1)
    app.list.set(source.samples[0].line + "\nno/such:1\n")
    run_key(app, "<F6>")
    lines = app.log.lines()
    assert "dst：已送达 1/2 个镜像" in lines and "backup：已送达 1/2 个镜像" in lines, lines
