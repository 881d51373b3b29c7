"""Registry passwords kept in the OS keyring (Windows Credential Manager, macOS
Keychain, Secret Service) through the ``keyring`` package.

Service "imageferry"; the entry's name is ``<user>@<scheme>://<host[:port]>``,
so one user may have different passwords on different registries. ``keyring``
is imported on first use only (it scans its backends, which costs start-up
time). A machine without a usable backend is not an error for reading: the
password is simply not there. Writing one there raises :class:`ConfigError`
saying to keep the password in cfg.yaml (or ``${ENV}``) instead.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from imageferry.core.config import parse_registry_url
from imageferry.core.errors import ConfigError

SERVICE = "imageferry"
log = logging.getLogger(__name__)


def entry_name(registry_url: str, user: str) -> str:
    """The keyring's user name for ``user`` at ``registry_url`` (``user@scheme://host``)."""
    return f"{user}@{parse_registry_url(registry_url).base_url}"


def _keyring() -> Any:
    import keyring

    return keyring


def backend_available() -> bool:
    """True when an OS keyring backend exists.

    Not keyring's "fail" stand-in, and not a keyrings.alt file (a password in a
    file is no better than in cfg.yaml) unless PYTHON_KEYRING_BACKEND chose it.
    """
    try:
        backend = _keyring().get_keyring()
        if float(backend.priority) <= 0:
            return False
        first = (getattr(backend, "backends", None) or [backend])[0]  # a chainer: its first
    except Exception as exc:  # any backend may fail in its own way: no keyring then
        log.debug("no keyring backend: %s", exc)
        return False
    alternative = type(first).__module__.startswith("keyrings.alt")
    return not alternative or bool(os.environ.get("PYTHON_KEYRING_BACKEND"))


def get_password(registry_url: str, user: str) -> str | None:
    """The password kept for ``user`` at ``registry_url``, or None (also without a backend)."""
    try:
        return _keyring().get_password(SERVICE, entry_name(registry_url, user))  # type: ignore[no-any-return]
    except Exception as exc:  # NoKeyringError, KeyringError, a backend's own errors
        log.debug("keyring lookup for %s failed: %s", registry_url, exc.__class__.__name__)
        return None


def set_password(registry_url: str, user: str, password: str) -> None:
    """Keep ``password``; raises :class:`ConfigError` when there is no usable keyring."""
    reason = "this computer has none"
    try:
        if backend_available():
            _keyring().set_password(SERVICE, entry_name(registry_url, user), password)
            return
    except Exception as exc:  # the backend's own error; its text might quote the secret
        reason = exc.__class__.__name__
    raise ConfigError(
        f"cannot keep the password of {user} at {registry_url} in the OS keyring ({reason}); "
        "untick 'keep the password in the OS keyring' to write it into cfg.yaml, or write "
        "password: ${ENV_VAR} there and set that variable"
    )


def delete_password(registry_url: str, user: str) -> None:
    """Forget the password kept for ``user`` at ``registry_url`` (nothing kept: no error)."""
    try:
        _keyring().delete_password(SERVICE, entry_name(registry_url, user))
    except Exception as exc:  # PasswordDeleteError when there was none; no backend
        log.debug("keyring delete for %s: %s", registry_url, exc.__class__.__name__)
