"""The window's summary counts the referrers that travelled with the images (issue 11)."""

from __future__ import annotations

import pytest

from imageferry.testing.registry_server import start_registry
from test_gui import cfg_text, run_key, window  # noqa: F401 - fixtures
from test_referrers import build_signed

pytest.importorskip("tkinter", reason="this Python has no Tk (Debian: python3-tk)")


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    server = start_registry(tmp_path_factory.mktemp("signed-gui"))
    made = build_signed(server)
    yield made
    made.client.close()
    server.stop()


def test_copy_summary_counts_referrers(window, signed, new_registry):  # noqa: F811
    target = new_registry()
    app = window(cfg_text(signed.url, target.url))
    app.list.set(signed.list_text())
    run_key(app, "<F6>")
    lines = app.log.lines()
    assert "3 image(s), 6 referrer(s): signatures, SBOMs, attestations" in lines
    assert "everything went through" in lines
