"""Test a registry connection: ping ``/v2/`` through the registry's own session, the
way every copy begins, and say what it answered (reachable? user and password accepted?)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import AuthError, ImageFerryError, RegistryError
from imageferry.engine.locations import open_registry


@dataclass(frozen=True)
class ConnectionReport:
    """What a registry answered to a test connection."""

    reachable: bool
    auth_ok: bool | None  # None: not known (unreachable, or not a registry)
    message: str
    status: int | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.auth_ok is True


def test_connection(
    config: Config, registry_cfg: RegistryConfig, timeout: float = 20.0
) -> ConnectionReport:
    """Ping ``registry_cfg`` (TLS, proxy and credentials as a copy would use them).

    Blocks for at most about ``timeout`` seconds (the ping runs on a daemon
    thread, left to finish on its own when it takes longer); never raises.
    """
    name = registry_cfg.display_name
    try:
        registry = open_registry(config, registry_cfg, writable=False)
    except ImageFerryError as exc:
        return ConnectionReport(False, None, str(exc))
    found: list[ConnectionReport] = []

    def ping() -> None:
        try:
            resp = registry.session.request("GET", "/v2/", (), what="connecting")
            found.append(ConnectionReport(True, True, _welcome(registry_cfg), resp.status))
        except RegistryError as exc:
            found.append(_refused(registry_cfg, exc))
        except (ImageFerryError, OSError, ValueError) as exc:
            found.append(ConnectionReport(False, None, f"{name}: {exc}"))

    _run_bounded(ping, timeout)
    registry.close()
    if not found:
        return ConnectionReport(
            False, None, f"{name}: no answer within {timeout:g} s; check the address and port"
        )
    return found[0]


def _run_bounded(work: Callable[[], None], timeout: float) -> None:
    thread = threading.Thread(target=work, name="imageferry-ping", daemon=True)
    thread.start()
    thread.join(timeout)


def _welcome(cfg: RegistryConfig) -> str:
    who = f"as {cfg.user}" if cfg.user else "anonymously"
    return f"{cfg.display_name}: connected {who}"


def _refused(cfg: RegistryConfig, exc: RegistryError) -> ConnectionReport:
    name = cfg.display_name
    if isinstance(exc, AuthError):
        if not cfg.user:
            text = f"{name}: reachable, but it asks for a user and password (HTTP {exc.status})"
            return ConnectionReport(True, False, text, exc.status)
        text = f"{name}: reachable, but the user and password were refused (HTTP {exc.status})"
        return ConnectionReport(True, False, text, exc.status)
    if exc.status == 404:
        text = (
            f"{name}: answers, but not as a container registry (GET /v2/ gave HTTP 404); "
            "check the address and port"
        )
        return ConnectionReport(True, None, text, 404)
    return ConnectionReport(exc.status is not None, None, str(exc), exc.status)
