"""The OS keyring's registry passwords, for front ends (through jobs) to keep and forget."""

from __future__ import annotations

from imageferry.registry.keyring_store import (
    backend_available,
    delete_password,
    get_password,
    set_password,
)

__all__ = ["backend_available", "delete_password", "get_password", "set_password"]
