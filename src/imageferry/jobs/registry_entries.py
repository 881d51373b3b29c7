"""A registry entry of cfg.yaml as the editor holds it, and cfg.yaml's rules for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imageferry.core import envvars
from imageferry.core.config import RegistryConfig, parse_registry_url
from imageferry.core.errors import ImageFerryError
from imageferry.core.model import ValidationError
from imageferry.core.textfile import read_text_file

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
ENV_ANY = envvars.ENV_RE


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
class EntryProblem:
    """What is wrong with one field of a source or target entry."""

    kind: Kind
    index: int
    field: str  # one of FIELDS ("registry" when the entry as a whole is wrong)
    message: str


def expand_env(text: str) -> str | None:
    """``text`` with ``${VAR}`` replaced; None when a variable is not set."""
    value, unset = envvars.expand_env(text)
    return None if unset else str(value)


def round_trip_yaml() -> Any:
    from ruamel.yaml import YAML  # only the editor needs it: not imported at start-up

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    return yaml


def load_document(path: Path) -> Any:
    """The round-trip document, or None when the file is not a YAML mapping."""
    try:  # as cfg.yaml is read: UTF-8, UTF-16 with a BOM, GBK, the ANSI code page
        text = read_text_file(path)
        doc = round_trip_yaml().load(text)
    except (OSError, ImageFerryError):
        return None
    except Exception:  # ruamel raises many kinds (scanner, parser, duplicate keys, ...)
        return None
    from ruamel.yaml.comments import CommentedMap

    if doc is None:
        return CommentedMap()
    return doc if isinstance(doc, CommentedMap) else None


def entry_values(entry: RegistryEntry, *, expand: bool = False) -> dict[str, Any]:
    """The entry as cfg.yaml keys (empty ones left out); ``expand`` replaces ``${VAR}``."""
    values: dict[str, Any] = {}
    for key in FIELDS:
        value = getattr(entry, key)
        if value in ("", None) or (key == "chunked" and value is False):
            continue
        if expand and key in ("user", "password") and isinstance(value, str):
            value = expand_env(value) or ""
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
