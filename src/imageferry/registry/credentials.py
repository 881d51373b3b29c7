"""Where a registry's user and password come from: cfg.yaml, the OS keyring, docker config."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from imageferry.core.errors import ConfigError
from imageferry.core.reference import is_docker_hub


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        raw = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def kept_password(registry_url: str, user: str) -> str:
    """The OS keyring's password for ``user`` at ``registry_url`` ("" when none is kept)."""
    from imageferry.registry import keyring_store  # imports keyring: only when needed

    return keyring_store.get_password(registry_url, user) or ""


def _docker_config_path() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return Path(folder) if folder else Path.home() / ".docker"


def _key_host(key: str) -> str:
    if "://" in key:
        key = urlsplit(key).netloc
    return key.split("/")[0]


def _run_helper(helper: str, host: str) -> Credentials | None:
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise ConfigError(
            f"docker's config.json names the credential helper '{helper}', but "
            f"docker-credential-{helper} is not on PATH; install it or put user and password "
            "in cfg.yaml"
        )
    done = subprocess.run(
        [program, "get"], input=host.encode(), capture_output=True, timeout=30, check=False
    )
    if done.returncode != 0:
        return None  # the helper has nothing for this host
    try:
        data = json.loads(done.stdout)
        user, secret = data["Username"], data["Secret"]
    except (ValueError, KeyError):
        raise ConfigError(
            f"credential helper '{helper}' gave an answer imageferry cannot read"
        ) from None
    return Credentials(user, secret) if user and user != "<token>" else None


def docker_credentials(host: str) -> Credentials | None:
    """Credentials docker would use for ``host``, or None."""
    path = _docker_config_path() / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    names = {host}
    if is_docker_hub(host):
        names |= {"index.docker.io", "docker.io", "registry-1.docker.io"}
    helpers = data.get("credHelpers") or {}
    for name in names:
        if name in helpers:
            return _run_helper(helpers[name], name)
    for key, entry in (data.get("auths") or {}).items():
        if _key_host(key) in names and isinstance(entry, dict):
            if entry.get("auth"):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except ValueError:
                    continue
                return Credentials(user, password)
            if entry.get("username"):
                return Credentials(entry["username"], entry.get("password", ""))
    if data.get("credsStore"):
        return _run_helper(
            data["credsStore"], "https://index.docker.io/v1/" if is_docker_hub(host) else host
        )
    return None
