"""cfg.yaml's registries as the window's editor sees them: read (even from a broken
file), checked with cfg.yaml's rules, tested, and written back.

Writing keeps everything else in the file as the user wrote it (other keys,
comments, order, quoting: ruamel.yaml round trip), replaces the file
atomically, and never writes a password kept in the OS keyring. A ``${ENV}``
value stays as written; such a password is never moved to the keyring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imageferry.core.config import Config, RegistryConfig, load_config
from imageferry.core.errors import ConfigError
from imageferry.engine import passwords
from imageferry.jobs.connection import ConnectionReport, test_connection
from imageferry.jobs.registry_entries import (
    ENV_ANY,
    EntryProblem,
    Kind,
    RegistryEntry,
    check_entries,
    entry_problems,
    entry_values,
    expand_env,
    load_document,
)
from imageferry.jobs.registry_writer import save_registries

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


@dataclass(frozen=True)
class RegistryFile:
    """What the editor starts from: the entries, and what is wrong with the file now."""

    path: Path
    sources: list[RegistryEntry]
    targets: list[RegistryEntry]
    problems: list[str]  # file, line, key and what is wrong, as the command line says it
    exists: bool
    readable: bool  # False: not YAML; the lists start empty and saving keeps a .bak


def read_registries(path: Path) -> RegistryFile:
    """Entries from ``path`` as far as they can be read; never raises for a broken file."""
    if not path.exists():
        note = f"{path} does not exist yet; add registries and save to create it"
        return RegistryFile(path, [], [], [note], exists=False, readable=True)
    problems = _config_problems(path)
    doc = load_document(path)
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
    user = expand_env(entry.user)
    if user and not entry.password:
        kept = passwords.get_password(entry.registry, user)
        if kept:
            return replace(entry, password=kept, keep_in_keyring=True, from_keyring=True)
    return entry


def keyring_available() -> bool:
    """True when passwords can be kept in the OS keyring on this machine."""
    return passwords.backend_available()


def test_entry(config_path: Path, entry: RegistryEntry, timeout: float = 20.0) -> ConnectionReport:
    """Test one entry as the editor holds it (``${VAR}`` replaced; a ca_file relative to
    ``config_path``'s folder). Blocks up to ``timeout``: call it on a worker thread."""
    problems = entry_problems(entry)
    if problems:
        key, message = next(iter(problems.items()))
        return ConnectionReport(False, None, f"{entry.label}: {key}: {message}")
    for key in ("user", "password"):
        if expand_env(getattr(entry, key)) is None:
            names = ", ".join(ENV_ANY.findall(getattr(entry, key)))
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
