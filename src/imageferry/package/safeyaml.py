"""YAML for meta files from outside: bounded in size, depth and expansion.

A meta file travels with the package, so it is hostile until checked. PyYAML's
safe loader still expands aliases (a 1 KB "billion laughs" document grows to
gigabytes) and recurses once per nesting level (RecursionError). Meta files of
either tool never use anchors, so any anchor or alias refuses the file; nesting
deeper than :data:`MAX_DEPTH` does too; and the file is read only up to
:data:`MAX_META_BYTES`.

With libyaml (PyYAML's C extension) the document's events are scanned for those
first, then it is loaded by the C loader: a base meta file of a few hundred
images loads in milliseconds instead of tens. Without it, a pure-Python loader
refuses them while composing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node

from imageferry.core.errors import PackageError

MAX_META_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 64


class _Refused(yaml.YAMLError):
    pass


_C_LOADER: Any = getattr(yaml, "CSafeLoader", None)
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _scan(text: str) -> None:
    """Refuse anchors, aliases and deep nesting from the C parser's events (no node is
    built yet). The depth counts as :class:`_MetaLoader` counts it: a node and its parents."""
    depth = 0
    for event in yaml.parse(text, Loader=_C_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise _Refused(f"uses a YAML anchor or alias (line {line})")
        if isinstance(event, _CLOSES):
            depth -= 1
        elif isinstance(event, (yaml.ScalarEvent, *_OPENS)):
            if depth + 1 > MAX_DEPTH:
                raise _Refused(f"is nested deeper than {MAX_DEPTH} levels")
            if isinstance(event, _OPENS):
                depth += 1


def _load(text: str) -> Any:
    if _C_LOADER is not None:
        try:
            _scan(text)
            return yaml.load(text, Loader=_C_LOADER)  # noqa: S506 - safe loader, checked above
        except _Refused:
            raise
        except yaml.YAMLError:
            pass  # libyaml's own limits: the checked loader says what is wrong
    return yaml.load(text, Loader=_MetaLoader)  # noqa: S506 - safe loader


class _MetaLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and deep nesting while composing."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _Refused(f"uses a YAML anchor or alias (line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"is nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1


def load_yaml_file(path: Path, what: str) -> Any:
    """The YAML document in ``path``; every problem is a :class:`PackageError` naming it."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise PackageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_META_BYTES:
        raise PackageError(
            f"{path} is larger than {MAX_META_BYTES // (1024 * 1024)} MiB: not a {what}"
        )
    try:
        return _load(raw.decode("utf-8"))
    except _Refused as exc:
        raise PackageError(f"{path} {exc}: refused, the {what} was edited or damaged") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        raise PackageError(f"{path} is not valid YAML: the {what} is damaged") from None
