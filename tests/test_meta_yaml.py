"""Meta files are read by libyaml when it is there: checked first, read as the Python loader
(which refuses anchors, aliases and deep nesting while composing) reads them."""

from __future__ import annotations

import pytest
import yaml

from imageferry.package import safeyaml


@pytest.mark.skipif(safeyaml._C_LOADER is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, {c: d}]\n",
        "[" * 63 + "]" * 63,
        "[" * 64 + "]" * 64,
        "[" * 63 + "1" + "]" * 63,
        "[" * 64 + "1" + "]" * 64,
        "{a: " * 64 + "1" + "}" * 64,
        "deep: " + "[" * 20000 + "]" * 20000 + "\n",  # past libyaml's own nesting limit
        "a: [\n",
        "x: &a 1\ny: *a\n",
        "x: !!str &a 1\n",
        "a:\n  b: *c\n",
        "",
    ],
)
def test_the_fast_yaml_path_refuses_and_reads_as_the_checked_one(text):
    def read(load) -> object:
        try:
            return load()
        except safeyaml._Refused as exc:
            return str(exc)
        except yaml.YAMLError as exc:
            return type(exc)

    python = read(lambda: yaml.load(text, Loader=safeyaml._MetaLoader))  # noqa: S506
    fast = read(lambda: safeyaml._load(text))
    assert fast == python
