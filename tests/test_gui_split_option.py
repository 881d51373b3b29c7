"""The window's "max file size" choice (issue 15) reaches the save; cfg.yaml's shows in it.

Named to run right after test_gui.py, before test_registry_editor_gui.py: that module
stops its own Xvfb while Tk keeps a connection to it, and Xlib then ends the whole
test process at the next Tk window.
"""

from __future__ import annotations

import pytest
import yaml

import test_gui
from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from test_gui import cfg_text, press, run_key

MB = 1024 * 1024
window = test_gui.window  # the window tests' fixture


@pytest.fixture(scope="module")
def small_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("splitwin"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    push_image(client, "win/big", "1", *make_image([make_layer("win-big", 3 * MB, level=0)]))
    client.close()
    yield server
    server.stop()


def test_the_windows_max_file_size_reaches_the_save(small_source, window, tmp_path):
    app = window(cfg_text(small_source.url))
    top = app.top
    assert str(top.size_entry.cget("state")) == "disabled"  # "No limit" by default
    top.size_kind.set(top.size_kinds[1])
    assert top.choices().max_file_size == "fat32"
    top.size_kind.set(top.size_kinds[2])
    assert str(top.size_entry.cget("state")) == "normal"
    top.size_custom.set("8 parsecs")
    app.list.set("win/big:1\n")
    press(app, "<F7>")
    assert not app.runs.busy and "not a size" in app.log.lines()

    top.size_custom.set("1MiB")
    out = tmp_path / "packages"
    top.save_folder.set(str(out))
    run_key(app, "<F7>")
    (meta,) = out.glob("*/*_meta.yaml")
    doc = yaml.safe_load(meta.read_text())
    sizes = [(meta.parent / d["name"]).stat().st_size for d in doc["datafiles"]]
    assert len(sizes) >= 4 and max(sizes) <= MB, sizes
    assert any("parts" in b for b in doc["blobs"])


def test_cfg_yaml_maxfilesize_shows_in_the_window(small_source, window):
    app = window(cfg_text(small_source.url, extra="maxfilesize: fat32\n"))
    assert app.top.size_kind.get() == app.top.size_kinds[1]
    custom = window(cfg_text(small_source.url, extra="maxfilesize: 1500M\n"))
    assert custom.top.size_custom.get() == "1500MB"
    assert custom.top.choices().max_file_size == "1500MB"
