"""cfg.yaml: the user's registries and settings, validated with every error located.

A file written for image-transmit loads unchanged. Errors name the file, the
line, the key path and what is allowed; a password value never appears in one.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from imageferry.core.errors import ConfigError
from imageferry.core.reference import check_host, check_repository

CONFIG_NAME = "cfg.yaml"
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class RegistryAddress:
    scheme: str  # "http" or "https"
    host: str  # host[:port] as used in image references

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"


def parse_registry_url(text: str) -> RegistryAddress:
    """``http://host:port``, ``https://host`` or a bare ``host[:port]``.

    A bare host means https, except loopback hosts, which mean http.
    """
    text = text.strip().rstrip("/")
    if "://" not in text:
        host = text
        bare = host.split(":")[0]
        scheme = "http" if bare in ("localhost", "127.0.0.1", "[::1]") else "https"
    else:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"'{text}': the scheme must be http or https")
        if parts.username or parts.password:
            raise ValueError(
                "the registry address must not contain a user or password; "
                "put them in the 'user' and 'password' keys"
            )
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"'{text}': give only scheme://host[:port]")
        scheme, host = parts.scheme, parts.netloc
    try:
        check_host(host)
    except Exception as exc:
        raise ValueError(str(exc)) from None
    return RegistryAddress(scheme, host)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryConfig(_Strict):
    registry: str
    name: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    repository: str | None = None
    ca_file: str | None = None
    skiptlsverify: bool | None = None
    chunked: bool = Field(False, description="upload blobs in chunks (for size-limited proxies)")

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


class CacheConfig(_Strict):
    pathname: str = "cache"
    keepdays: float = Field(7, ge=0)
    keepsize: float = Field(10, ge=0)


class DingTalkConfig(_Strict):
    """A DingTalk group robot (image-transmit's keys): access token, and the signing secret."""

    token: SecretStr
    secret: SecretStr | None = None


def _check_webhook(value: str) -> str:
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
    lang: Literal["zh_CN", "en_US"] | None = None
    skiptlsverify: bool = False
    interval: float = Field(300, ge=1, le=7 * 24 * 3600)  # watch: seconds between rounds
    webhook: list[str] = Field(default_factory=list)  # watch: URLs that get a JSON POST
    dingtalk: list[DingTalkConfig] = Field(default_factory=list)  # watch: group robots
    path: Path | None = Field(None, exclude=True)

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
        """A registry by name, host or URL; an unknown URL becomes an anonymous one."""
        entries = self.source if kind == "source" else self.target
        if wanted is None:
            if len(entries) == 1:
                return entries[0]
            names = ", ".join(e.display_name for e in entries) or "none configured"
            raise ConfigError(
                f"choose a {kind} with --{'from' if kind == 'source' else 'to'} "
                f"(configured: {names})"
            )
        for entry in [*entries, *(self.target if kind == "source" else self.source)]:
            if wanted in (entry.name, entry.address.host, entry.registry.rstrip("/")):
                return entry
        looks_like_host = "://" in wanted or "." in wanted or ":" in wanted or wanted == "localhost"
        try:
            if not looks_like_host:
                raise ValueError(wanted)
            parse_registry_url(wanted)
        except ValueError:
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


def _expand_env(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(
                f"{where} refers to ${{{name}}}, but that environment variable is not set"
            )
        return os.environ[name]

    return _ENV_RE.sub(sub, value)


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{path}, line {line}: not valid YAML: {exc.problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys such as 'source:' and 'target:' at the top")
    for kind in ("source", "target"):
        for i, entry in enumerate(data.get(kind) or []):
            if isinstance(entry, dict):
                for key in ("user", "password"):
                    entry[key] = _expand_env(entry.get(key), f"{path}: {kind}[{i}].{key}")
    _expand_notify_env(data, path)
    try:
        config = Config.model_validate({**data, "path": path.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            where = ".".join(str(p) for p in loc) or "(top)"
            at = _line_of(root, loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see the README for the allowed keys)"
            problems.append(f"{path}, line {at}: {where}: {msg}")
        raise ConfigError("\n".join(problems)) from None
    _check_names(config, path)
    return config


def _expand_notify_env(data: dict[str, Any], path: Path) -> None:
    """``${ENV}`` in webhook URLs and DingTalk keys, as in passwords."""
    hooks = data.get("webhook")
    if isinstance(hooks, list):
        data["webhook"] = [_expand_env(h, f"{path}: webhook[{i}]") for i, h in enumerate(hooks)]
    elif isinstance(hooks, str):
        data["webhook"] = _expand_env(hooks, f"{path}: webhook")
    robots = data.get("dingtalk")
    for i, robot in enumerate(robots if isinstance(robots, list) else [robots]):
        if isinstance(robot, dict):
            for key in ("token", "secret"):
                if key in robot:
                    robot[key] = _expand_env(robot[key], f"{path}: dingtalk[{i}].{key}")


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
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return load_config(explicit)
    program_dir = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).parent
    for folder in (Path.cwd(), program_dir):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return load_config(candidate)
    return Config.model_validate({})
