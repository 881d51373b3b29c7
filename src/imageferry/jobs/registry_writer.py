"""Write cfg.yaml's registries back: the rest of the file kept as written (ruamel.yaml
round trip: keys, comments, order, quoting, line endings), the file replaced in one step,
passwords kept in the OS keyring left out of it."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from imageferry.core.errors import ConfigError
from imageferry.engine import passwords
from imageferry.jobs.registry_entries import (
    FIELDS,
    RegistryEntry,
    check_entries,
    entry_values,
    expand_env,
    load_document,
    round_trip_yaml,
)


def save_registries(
    path: Path, sources: list[RegistryEntry], targets: list[RegistryEntry]
) -> Path | None:
    """Write the two lists into ``path`` (created if missing); returns the backup kept, if any.

    Raises :class:`ConfigError` (nothing written) when an entry is wrong or a
    password cannot be kept in the keyring. A file that is not YAML is copied
    to ``cfg.yaml.bak`` first, then replaced.
    """
    problems = check_entries(sources, targets)
    if problems:
        raise ConfigError("\n".join(f"{p.kind}.{p.index}.{p.field}: {p.message}" for p in problems))
    doc = load_document(path) if path.exists() else _new_document()
    backup = None
    if doc is None:
        backup = path.with_name(path.name + ".bak")
        doc = _new_document()
    leave_keyring = _keep_passwords([*sources, *targets])
    for kind, entries in (("source", sources), ("target", targets)):
        doc[kind] = _merged(doc.get(kind), entries)
    out = io.StringIO()
    round_trip_yaml().dump(doc, out)
    if backup is not None:
        try:
            shutil.copyfile(path, backup)
        except OSError as exc:
            raise ConfigError(f"cannot keep {path} as {backup}: {exc.strerror or exc}") from None
    _write_atomically(path, out.getvalue())
    for registry, user in leave_keyring:  # only once cfg.yaml holds the password
        passwords.delete_password(registry, user)
    return backup


def _new_document() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _keep_passwords(entries: list[RegistryEntry]) -> list[tuple[str, str]]:
    """Put passwords into the keyring; return the (registry, user) entries to remove from it
    after cfg.yaml, which now holds their passwords, is written."""
    leave: list[tuple[str, str]] = []
    for entry in entries:
        if not entry.user.strip() or not entry.password or entry.password_is_env:
            continue
        user = expand_env(entry.user.strip())
        if user is None:
            raise ConfigError(
                f"{entry.label}: the user refers to an environment variable that is not set; "
                "set it, or do not keep this password in the OS keyring"
            )
        if entry.keep_in_keyring:
            passwords.set_password(entry.registry.strip(), user, entry.password)
        elif entry.from_keyring:
            leave.append((entry.registry.strip(), user))
    return leave


def _merged(old: Any, entries: list[RegistryEntry]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    seq = old if isinstance(old, CommentedSeq) else CommentedSeq()
    items = []
    for entry in entries:
        reuse = entry.origin is not None and entry.origin < len(seq)
        item = seq[entry.origin] if reuse else None
        item = item if isinstance(item, CommentedMap) else CommentedMap()
        _fill(item, entry_values(entry))
        items.append(item)
    del seq[:]
    seq.extend(items)
    return seq


def _fill(item: Any, values: dict[str, Any]) -> None:
    """Make ``item`` hold ``values``; unchanged keys keep their quoting and comments."""
    for key in list(item):
        if key not in values and not (key in FIELDS and item[key] in ("", None, False)):
            del item[key]  # cleared in the editor, or a key cfg.yaml does not know
    for key, value in values.items():
        if key in item and item[key] == value and isinstance(item[key], type(value)):
            continue
        if key in item:
            item[key] = value
        else:
            before = FIELDS[: FIELDS.index(key)]
            item.insert(sum(1 for k in item if k in before), key, value)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, with its permissions and line endings (CRLF stays CRLF)."""
    tmp: str | None = None
    try:
        old = path.read_bytes() if path.is_file() else b""
        mode = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        newline = "\r\n" if b"\r\n" in old else "\n"
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
