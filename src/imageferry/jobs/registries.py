"""cfg.yaml's registries as the window's editor sees them: read (even from a broken
file), checked with cfg.yaml's rules, tested, and written back.

Writing keeps everything else in the file as the user wrote it (other keys,
comments, order, quoting: ruamel.yaml round trip), replaces the file
atomically, and never writes a password kept in the OS keyring. A ``${ENV}``
value stays as written; such a password is never moved to the keyring.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from imageferry.core.config import Config, RegistryConfig, load_config, parse_registry_url
from imageferry.core.errors import ConfigError
from imageferry.engine import passwords
from imageferry.jobs.connection import ConnectionReport, test_connection

__all__ = [
    "ConnectionReport",
    "EntryProblem",
    "RegistryEntry",
    "RegistryFile",
    "check_entries",
    "entry_problems",
    "keyring_available",
    "read_registries",
    "save_registries",
    "test_connection",
    "test_entry",
]

Kind = Literal["source", "target"]
FIELDS = (
    "name",
    "registry",
    "user",
    "password",
    "repository",
    "ca_file",
    "skiptlsverify",
    "chunked",
)
_ENV_ONLY = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_ENV_ANY = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RegistryEntry:
    """One source or target as written in cfg.yaml (text, ``${ENV}`` not replaced)."""

    registry: str = ""
    name: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    repository: str = ""
    ca_file: str = ""
    skiptlsverify: bool | None = None
    chunked: bool = False
    keep_in_keyring: bool = False  # the password goes to the OS keyring, not into cfg.yaml
    from_keyring: bool = False  # the password shown was read from the keyring
    origin: int | None = None  # its index in cfg.yaml's list, when read from there

    @property
    def password_is_env(self) -> bool:
        """The password is a ``${VAR}`` reference (written as is, never kept in the keyring)."""
        return bool(_ENV_ONLY.fullmatch(self.password.strip()))

    @property
    def label(self) -> str:
        return self.name or self.registry or "?"


@dataclass(frozen=True)
class RegistryFile:
    """What the editor starts from: the entries, and what is wrong with the file now."""

    path: Path
    sources: list[RegistryEntry]
    targets: list[RegistryEntry]
    problems: list[str]  # file, line, key and what is wrong, as the command line says it
    exists: bool
    readable: bool  # False: not YAML; the lists start empty and saving keeps a .bak


@dataclass(frozen=True)
class EntryProblem:
    kind: Kind
    index: int
    field: str  # one of FIELDS ("registry" when the entry as a whole is wrong)
    message: str


# -- reading -------------------------------------------------------------------


def _yaml() -> Any:
    from ruamel.yaml import YAML  # only the editor needs it: not imported at start-up

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


def _load_document(path: Path) -> Any:
    """The round-trip document, or None when the file is not a YAML mapping."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        doc = _yaml().load(text)
    except (OSError, UnicodeDecodeError):
        return None
    except Exception:  # ruamel raises many kinds (scanner, parser, duplicate keys, ...)
        return None
    from ruamel.yaml.comments import CommentedMap

    if doc is None:
        return CommentedMap()
    return doc if isinstance(doc, CommentedMap) else None


def read_registries(path: Path) -> RegistryFile:
    """Entries from ``path`` as far as they can be read; never raises for a broken file."""
    if not path.exists():
        note = f"{path} does not exist yet; add registries and save to create it"
        return RegistryFile(path, [], [], [note], exists=False, readable=True)
    problems = _config_problems(path)
    doc = _load_document(path)
    if doc is None:
        problems.append(
            f"{path} cannot be read as YAML: the editor starts with no registries, and saving "
            f"keeps the old file as {path.name}.bak"
        )
        return RegistryFile(path, [], [], problems, exists=True, readable=False)
    sources = _entries(doc, "source", problems, path)
    targets = _entries(doc, "target", problems, path)
    return RegistryFile(path, sources, targets, problems, exists=True, readable=True)


def _config_problems(path: Path) -> list[str]:
    try:
        load_config(path)
    except ConfigError as exc:
        return str(exc).splitlines()
    return []


def _entries(doc: Any, kind: Kind, problems: list[str], path: Path) -> list[RegistryEntry]:
    items = doc.get(kind)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(f"{path}: '{kind}' is not a list of registries; saving replaces it")
        return []
    found = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            found.append(_entry(item, i))
        else:
            line = items.lc.item(i)[0] + 1  # type: ignore[attr-defined]
            problems.append(f"{path}, line {line}: {kind}.{i} is not a registry; saving drops it")
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _entry(item: dict[str, Any], index: int) -> RegistryEntry:
    skip = item.get("skiptlsverify")
    entry = RegistryEntry(
        registry=_text(item.get("registry")),
        name=_text(item.get("name")),
        user=_text(item.get("user")),
        password=_text(item.get("password")),
        repository=_text(item.get("repository")),
        ca_file=_text(item.get("ca_file")),
        skiptlsverify=skip if isinstance(skip, bool) else None,
        chunked=item.get("chunked") is True,
        origin=index,
    )
    user = _expand(entry.user)
    if user and not entry.password:
        kept = passwords.get_password(entry.registry, user)
        if kept:
            return _replace(entry, password=kept, keep_in_keyring=True, from_keyring=True)
    return entry


def _replace(entry: RegistryEntry, **changes: Any) -> RegistryEntry:
    from dataclasses import replace

    return replace(entry, **changes)


def _expand(text: str) -> str | None:
    """``text`` with ``${VAR}`` replaced; None when a variable is not set."""
    names = _ENV_ANY.findall(text)
    if any(n not in os.environ for n in names):
        return None
    return _ENV_ANY.sub(lambda m: os.environ[m.group(1)], text)


def keyring_available() -> bool:
    """True when passwords can be kept in the OS keyring on this machine."""
    return passwords.backend_available()


# -- checking ------------------------------------------------------------------


def entry_values(entry: RegistryEntry, *, expand: bool = False) -> dict[str, Any]:
    """The entry as cfg.yaml keys (empty ones left out); ``expand`` replaces ``${VAR}``."""
    values: dict[str, Any] = {}
    for key in FIELDS:
        value = getattr(entry, key)
        if value in ("", None) or (key == "chunked" and value is False):
            continue
        if expand and key in ("user", "password") and isinstance(value, str):
            value = _expand(value) or ""
        values[key] = value.strip() if isinstance(value, str) and key != "password" else value
    if entry.keep_in_keyring and not entry.password_is_env and not expand:
        values.pop("password", None)
    return values


def entry_problems(entry: RegistryEntry) -> dict[str, str]:
    """What is wrong with one entry, by field, with cfg.yaml's rules."""
    if not entry.registry.strip():
        return {"registry": "give the registry's address, like https://host or http://host:port"}
    problems: dict[str, str] = {}
    if entry.password and not entry.user.strip():
        problems["user"] = "a password needs a user"
    try:
        RegistryConfig.model_validate(entry_values(entry))
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else "registry"
            problems.setdefault(key, err["msg"].removeprefix("Value error, "))
    return problems


def check_entries(sources: list[RegistryEntry], targets: list[RegistryEntry]) -> list[EntryProblem]:
    """Every problem of every entry, and names used twice in one list."""
    found = []
    for kind, entries in (("source", sources), ("target", targets)):
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            for key, message in entry_problems(entry).items():
                found.append(EntryProblem(kind, i, key, message))  # type: ignore[arg-type]
            name = entry.name.strip() or _host(entry.registry)
            if name and name in seen:
                found.append(EntryProblem(kind, i, "name", f"another {kind} is called '{name}'"))  # type: ignore[arg-type]
            seen.add(name)
    return found


def _host(url: str) -> str:
    try:
        return parse_registry_url(url).host
    except ValueError:
        return url.strip()


def test_entry(config_path: Path, entry: RegistryEntry, timeout: float = 20.0) -> ConnectionReport:
    """Test one entry as the editor holds it (``${VAR}`` replaced; a ca_file relative to
    ``config_path``'s folder). Blocks up to ``timeout``: call it on a worker thread."""
    problems = entry_problems(entry)
    if problems:
        key, message = next(iter(problems.items()))
        return ConnectionReport(False, None, f"{entry.label}: {key}: {message}")
    for key in ("user", "password"):
        if _expand(getattr(entry, key)) is None:
            names = ", ".join(_ENV_ANY.findall(getattr(entry, key)))
            return ConnectionReport(
                False,
                None,
                f"{entry.label}: {key} refers to ${{{names}}}, "
                "but that environment variable is not set",
            )
    try:
        config = load_config(config_path)
    except ConfigError:
        config = Config.model_validate({"path": config_path.resolve()})
    cfg = RegistryConfig.model_validate(entry_values(entry, expand=True))
    return test_connection(config, cfg, timeout)


# -- writing -------------------------------------------------------------------


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
    doc = _load_document(path) if path.exists() else _new_document()
    backup = None
    if doc is None:
        backup = path.with_name(path.name + ".bak")
        doc = _new_document()
    _keep_passwords([*sources, *targets])
    for kind, entries in (("source", sources), ("target", targets)):
        doc[kind] = _merged(doc.get(kind), entries)
    out = io.StringIO()
    _yaml().dump(doc, out)
    if backup is not None:
        try:
            shutil.copyfile(path, backup)
        except OSError as exc:
            raise ConfigError(f"cannot keep {path} as {backup}: {exc.strerror or exc}") from None
    _write_atomically(path, out.getvalue())
    return backup


def _new_document() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _keep_passwords(entries: list[RegistryEntry]) -> None:
    for entry in entries:
        if not entry.user.strip() or not entry.password or entry.password_is_env:
            continue
        user = _expand(entry.user.strip())
        if user is None:
            raise ConfigError(
                f"{entry.label}: the user refers to an environment variable that is not set; "
                "set it, or do not keep this password in the OS keyring"
            )
        if entry.keep_in_keyring:
            passwords.set_password(entry.registry.strip(), user, entry.password)
        elif entry.from_keyring:
            passwords.delete_password(entry.registry.strip(), user)  # now in cfg.yaml instead


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
