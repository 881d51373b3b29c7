"""cfg.yaml: the user's registries and settings, validated with every error located.

A file written for image-transmit loads unchanged. Errors name the file, the
line, the key path and what is allowed; a password value never appears in one.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from imageferry.core.cafile import check_ca_file
from imageferry.core.envvars import ENV_RE, expand_env, expand_notify_env
from imageferry.core.errors import ConfigError, ImageFerryError
from imageferry.core.filenames import check_file_prefix
from imageferry.core.filesize import parse_size
from imageferry.core.model import (
    Field,
    Model,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from imageferry.core.reference import check_repository
from imageferry.core.registry_url import (
    RegistryAddress,
    has_userinfo,
    parse_registry_url,
    redact_url,
)
from imageferry.core.textfile import read_text_file

if TYPE_CHECKING:  # yaml is imported when a cfg.yaml is read: a run without one needs none
    import yaml

CONFIG_NAME = "cfg.yaml"


class _Strict(Model):
    """Unknown keys refused, frozen (core/model.py: pydantic's declarations, without pydantic)."""


class RegistryConfig(_Strict):
    registry: str
    name: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    repository: str | None = None
    ca_file: str | None = None
    skiptlsverify: bool | None = None
    chunked: bool = Field(False, description="upload blobs in chunks (for size-limited proxies)")
    # Where each key was written ("cfg.yaml, line 7: target.0.ca_file"), for messages.
    _where: dict[str, str] = PrivateAttr(default_factory=dict)
    # Why user/password cannot be used yet (an unset ${VAR}); raised only if it is used.
    _unset_env: str | None = PrivateAttr(None)
    _file: Path | None = PrivateAttr(None)

    @field_validator("registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        parse_registry_url(value)
        return value

    @field_validator("repository")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value:
            try:
                check_repository(value.strip("/"))
            except Exception as exc:
                raise ValueError(str(exc)) from None
        return value or None

    @property
    def address(self) -> RegistryAddress:
        return parse_registry_url(self.registry)

    @property
    def display_name(self) -> str:
        return self.name or self.address.host

    @property
    def credentials_origin(self) -> str:
        """Where ``user``/``password`` were written, for an auth error to name."""
        return f"{CONFIG_NAME} ({self._file})" if self._file else CONFIG_NAME

    def where(self, key: str) -> str:
        """``cfg.yaml, line N: target.0.key`` when read from a file, else the registry's name."""
        return self._where.get(key) or f"{self.display_name}: {key}"

    def require_env(self) -> None:
        """Raise :class:`ConfigError` if ``user``/``password`` name an unset ``${VAR}``.

        Variables are resolved when the file is read, but a missing one only
        matters for a registry that is used, so this is asked then.
        """
        if self._unset_env:
            raise ConfigError(self._unset_env)

    def ca_path(self, folder: Path) -> Path | None:
        """``ca_file`` resolved against ``folder`` and checked to hold a certificate."""
        if not self.ca_file:
            return None
        return check_ca_file((folder / self.ca_file).resolve(), self.where("ca_file"))


class CacheConfig(_Strict):
    pathname: str = "cache"
    keepdays: float = Field(7, ge=0)
    keepsize: float = Field(10, ge=0)


class DingTalkConfig(_Strict):
    """A DingTalk group robot (image-transmit's keys): access token, and the signing secret."""

    token: SecretStr
    secret: SecretStr | None = None


def _check_webhook(value: str) -> str:
    if ENV_RE.search(value):  # an unset ${VAR}: refused when a watch needs it
        return value
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("a webhook must be an http:// or https:// URL")
    return value.strip()


class Config(_Strict):
    source: list[RegistryConfig] = Field(default_factory=list)
    target: list[RegistryConfig] = Field(default_factory=list)
    maxconn: int = Field(5, ge=1, le=64)
    retries: int = Field(2, ge=0, le=20)
    singlefile: bool = False
    cache: CacheConfig | None = None
    compressor: Literal["none", "zstd", ""] | None = None
    outprefix: str = "img"
    maxfilesize: int | None = None  # save: no data file larger (bytes; "2G", "4GiB", "fat32")
    lang: Literal["zh_CN", "en_US"] | None = None
    skiptlsverify: bool = False
    timeout: float = Field(30, gt=0, le=3600, description="seconds a registry may stall")
    referrers: bool = True  # carry signatures, SBOMs, attestations (OCI 1.1 referrers)
    interval: float = Field(300, ge=1, le=7 * 24 * 3600)  # watch: seconds between rounds
    webhook: list[str] = Field(default_factory=list)  # watch: URLs that get a JSON POST
    dingtalk: list[DingTalkConfig] = Field(default_factory=list)  # watch: group robots
    path: Path | None = Field(None, exclude=True)
    _notify_unset: list[str] = PrivateAttr(default_factory=list)

    def require_notify_env(self) -> None:
        """Raise :class:`ConfigError` if a webhook or DingTalk key names an unset ``${VAR}``
        (only a watch sends notifications, so only a watch asks)."""
        if self._notify_unset:
            raise ConfigError("\n".join(self._notify_unset))

    @field_validator("outprefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        try:
            return check_file_prefix(value, "the prefix")
        except ImageFerryError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("maxfilesize", mode="before")
    @classmethod
    def _max_file_size(cls, value: Any) -> Any:
        if value is None or value == "" or value == 0:
            return None
        try:
            return parse_size(value, "the size")
        except ImageFerryError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("webhook", mode="before")
    @classmethod
    def _webhooks(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value

    @field_validator("webhook")
    @classmethod
    def _webhook_urls(cls, value: list[str]) -> list[str]:
        return [_check_webhook(v) for v in value]

    @field_validator("dingtalk", mode="before")
    @classmethod
    def _dingtalk_list(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, dict) else value

    @field_validator("source", "target", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def find(self, kind: Literal["source", "target"], wanted: str | None) -> RegistryConfig:
        """A registry by name, host or URL; an unknown URL becomes an anonymous one.

        Raises :class:`ConfigError` when the chosen entry names an unset ``${VAR}``.
        """
        entry = self._find(kind, wanted)
        entry.require_env()
        return entry

    def _find(self, kind: Literal["source", "target"], wanted: str | None) -> RegistryConfig:
        entries = self.source if kind == "source" else self.target
        option = "--from" if kind == "source" else "--to"
        if wanted is None:
            if len(entries) == 1:
                return entries[0]
            if entries:
                names = ", ".join(e.display_name for e in entries)
                raise ConfigError(f"choose a {kind} with {option} NAME (configured: {names})")
            where = f"in {self.path}" if self.path else f"(no {CONFIG_NAME} found)"
            raise ConfigError(
                f"choose a {kind} with {option} http://host:port; no {kind} is configured {where}"
            )
        for entry in [*entries, *(self.target if kind == "source" else self.source)]:
            if wanted in (entry.name, entry.address.host, entry.registry.rstrip("/")):
                return entry
        if has_userinfo(wanted):
            raise ConfigError(
                f"{option} {redact_url(wanted)}: a registry address must not contain a user or "
                f"password; put them in {CONFIG_NAME}'s 'user' and 'password' for that registry, "
                "or run 'docker login' for its host"
            )
        looks_like_host = "://" in wanted or "." in wanted or ":" in wanted or wanted == "localhost"
        try:
            if not looks_like_host:
                raise ValueError(wanted)
            parse_registry_url(wanted)
        except ValueError as exc:
            if looks_like_host:
                raise ConfigError(f"{option} {wanted}: {exc}") from None
            if self.path is None:
                raise ConfigError(
                    f"'{wanted}' is not a registry address like http://host:port, and there is "
                    f"no {CONFIG_NAME} here or beside the program to name {kind}s in"
                ) from None
            names = ", ".join(e.display_name for e in entries) or "none"
            raise ConfigError(
                f"'{wanted}' is neither a {kind} name in {self.path} (configured: {names}) "
                "nor a registry address like http://host:port"
            ) from None
        return RegistryConfig.model_validate({"registry": wanted})


def _expand_entries(data: dict[str, Any], path: Path, root: yaml.Node | None) -> dict[Any, str]:
    """Expand ``${VAR}`` in user/password in place; say which entries name an unset one."""
    unset: dict[Any, str] = {}
    for kind in ("source", "target"):
        entries = data.get(kind)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict):
                continue
            for key in ("user", "password"):
                entry[key], names = expand_env(entry.get(key))
                if names and (kind, i) not in unset:
                    unset[kind, i] = (
                        f"{path}, line {_line_of(root, (kind, i, key))}: {kind}.{i}.{key} "
                        f"refers to ${{{names[0]}}}, but that environment variable is not set; "
                        "set it before running imageferry"
                    )
    return unset


def _locate(config: Config, path: Path, root: yaml.Node | None, unset: dict[Any, str]) -> None:
    """Tell every registry entry where its keys were written (for later messages)."""
    for kind, entries in (("source", config.source), ("target", config.target)):
        for i, entry in enumerate(entries):
            entry._file = path
            entry._unset_env = unset.get((kind, i))
            entry._where = {
                key: f"{path}, line {_line_of(root, (kind, i, key))}: {kind}.{i}.{key}"
                for key in RegistryConfig.model_fields
            }


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    import yaml

    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            found = [v for k, v in node.value if getattr(k, "value", None) == key]
            if not found:
                break
            node = found[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return line


def load_config(path: Path) -> Config:
    """Read and validate ``path``. Raises :class:`ConfigError` listing every problem."""
    import yaml

    try:
        text = read_text_file(path)
    except ImageFerryError as exc:
        raise ConfigError(str(exc)) from None
    try:
        loader = yaml.SafeLoader(text)  # one parse: the data, and the nodes for line numbers
        try:
            root = loader.get_single_node()
            data = (loader.construct_document(root) if root is not None else None) or {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{path}, line {line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys such as 'source:' and 'target:' at the top")
    unset = _expand_entries(data, path, root)
    notify_unset = expand_notify_env(data, path)
    try:
        config = Config.model_validate({**data, "path": path.resolve()})
    except ValidationError as exc:
        raise ConfigError(_validation_message(exc, path, root)) from None
    config._notify_unset = notify_unset
    _locate(config, path, root, unset)
    _check_names(config, path)
    return config


def _validation_message(exc: ValidationError, path: Path, root: yaml.Node | None) -> str:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        where = ".".join(str(p) for p in loc) or "(top)"
        at = _line_of(root, loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see the README for the allowed keys)"
        problems.append(f"{path}, line {at}: {where}: {msg}")
    return "\n".join(problems)


def _check_names(config: Config, path: Path) -> None:
    for kind, entries in (("source", config.source), ("target", config.target)):
        seen: set[str] = set()
        for entry in entries:
            if entry.display_name in seen:
                raise ConfigError(
                    f"{path}: two {kind} entries are called '{entry.display_name}'; "
                    "give them different 'name:' values"
                )
            seen.add(entry.display_name)


def find_config(explicit: Path | None) -> Config:
    """``-c PATH``, else cfg.yaml in the working directory, else beside the program."""
    if explicit is not None:
        if explicit.is_dir():
            raise ConfigError(
                f"config file {explicit} is a folder; give the file itself, "
                f"e.g. -c {explicit / CONFIG_NAME}"
            )
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return load_config(explicit)
    program_dir = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).parent
    for folder in (Path.cwd(), program_dir):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return load_config(candidate)
    return Config.model_validate({})
