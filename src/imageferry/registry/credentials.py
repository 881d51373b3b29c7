"""Where a registry's user and password come from: cfg.yaml, the OS keyring, docker config."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import sys
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imageferry.core.errors import ConfigError
from imageferry.core.lazydata import lazy_dataclass
from imageferry.core.reference import is_docker_hub

log = logging.getLogger(__name__)
HELPER_TIMEOUT = 30.0
MAX_CONFIG_BYTES = 4 * 1024 * 1024


@lazy_dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    origin: str = "cfg.yaml"  # where they came from, for an auth error to name
    # docker's "identitytoken" (an OAuth2 refresh token, as Azure ACR and Harbor OIDC
    # logins store it): exchanged at the token endpoint, never sent to the registry
    identity_token: str = field(default="", repr=False)

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


def helper_run_options() -> dict[str, Any]:
    """``subprocess.run`` keywords for a credential helper.

    Every stream is a pipe (``input=`` makes stdin one: a windowed program has
    no ``sys.stdin`` to inherit), and on Windows it gets no console window
    that would flash up.
    """
    options: dict[str, Any] = {"capture_output": True}
    if sys.platform == "win32":
        import subprocess

        options["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    return options


def _run_helper(helper: str, host: str, named_in: Path) -> Credentials | None:
    import subprocess  # only a docker config that names a helper starts one

    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise ConfigError(
            f"{named_in} names the credential helper '{helper}', but "
            f"docker-credential-{helper} is not on PATH; install it or put user and password "
            "in cfg.yaml"
        )
    try:
        done = subprocess.run(
            [program, "get"],
            input=host.encode(),
            timeout=HELPER_TIMEOUT,
            check=False,
            **helper_run_options(),
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"credential helper docker-credential-{helper} (named in {named_in}) did not answer "
            f"within {HELPER_TIMEOUT:g} s; unlock or fix it, or put user and password in cfg.yaml"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"credential helper {program} (named in {named_in}) cannot run: {exc.strerror or exc}"
        ) from None
    if done.returncode != 0:
        return None  # the helper has nothing for this host
    try:
        data = json.loads(done.stdout)
        user, secret = data["Username"], data["Secret"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            f"credential helper '{helper}' gave an answer imageferry cannot read"
        ) from None
    origin = f"docker credential helper docker-credential-{helper} (named in {named_in})"
    if user == "<token>" and secret:  # docker's sign for an identity token
        return Credentials("", "", origin, identity_token=str(secret))
    return Credentials(user, secret, origin) if user else None


def _read_docker_config(path: Path) -> dict[str, Any] | None:
    """docker's config.json, or None (missing: silently; broken: with a warning)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read docker's %s (%s); ignoring it", path, exc.strerror or exc)
        return None
    try:
        data = json.loads(raw.decode("utf-8-sig"))
        if len(raw) > MAX_CONFIG_BYTES or not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        log.warning("docker's %s is not valid JSON (%s); ignoring it", path, exc)
        return None
    return data


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _auths_entry(entry: dict[str, Any], origin: str, where: str) -> Credentials | None:
    """One ``auths`` entry: ``auth`` (base64 user:password) or ``username``/``password``,
    with its ``identitytoken`` when docker stored one."""
    token = entry.get("identitytoken")
    identity = token if isinstance(token, str) else ""
    user, password = "", ""
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, TypeError):
            log.warning("%s is not base64 user:password", where)
            if not identity:
                return None
    elif entry.get("username"):
        user, password = str(entry["username"]), str(entry.get("password", ""))
    if not (user or identity):
        return None
    return Credentials(user, password, origin, identity_token=identity)


def docker_credentials(host: str) -> Credentials | None:
    """Credentials docker would use for ``host``, or None."""
    path = _docker_config_path() / "config.json"
    data = _read_docker_config(path)
    if data is None:
        return None
    names = {host}
    if is_docker_hub(host):
        names |= {"index.docker.io", "docker.io", "registry-1.docker.io"}
    helpers = _section(data, "credHelpers")
    for name in names:
        if isinstance(helpers.get(name), str):
            return _run_helper(helpers[name], name, path)
    origin = f"docker's {path}"
    for key, entry in _section(data, "auths").items():
        if _key_host(key) in names and isinstance(entry, dict):
            found = _auths_entry(entry, origin, f"{path}: the 'auth' of {key}")
            if found is not None:
                return found
    if isinstance(data.get("credsStore"), str) and data["credsStore"]:
        return _run_helper(
            data["credsStore"], "https://index.docker.io/v1/" if is_docker_hub(host) else host, path
        )
    return None
