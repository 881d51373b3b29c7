"""``ca_file:``: checked to hold CA certificates before any connection relies on it."""

from __future__ import annotations

import ssl
from pathlib import Path

from imageferry.core.errors import ConfigError

MAX_CA_BYTES = 4 * 1024 * 1024
_CERT = b"-----BEGIN CERTIFICATE-----"
_KEY = b"PRIVATE KEY-----"


def check_ca_file(path: Path, where: str) -> Path:
    """``path`` if it holds at least one CA certificate (PEM, or one DER certificate).

    ``where`` locates the setting (``cfg.yaml, line 7: target.0.ca_file``) for
    the :class:`ConfigError` raised otherwise. Reads at most 4 MiB.
    """
    advice = "point ca_file at the registry's CA certificate (PEM, '-----BEGIN CERTIFICATE-----')"
    if path.is_dir():
        raise ConfigError(f"{where}: {path} is a folder; {advice}")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_CA_BYTES + 1)
    except OSError as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise ConfigError(f"{where}: {path} {reason}; {advice}") from None
    if len(data) > MAX_CA_BYTES or not _loads(data):
        what = (
            "holds a private key, not a certificate"
            if _KEY in data and _CERT not in data
            else "holds no readable certificate"
        )
        raise ConfigError(f"{where}: {path} {what}; {advice}")
    return path


def _loads(data: bytes) -> bool:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # empty: no system CAs to count
    try:
        if _CERT in data:
            ctx.load_verify_locations(cadata=data.decode("ascii", "replace"))
        else:
            ctx.load_verify_locations(cadata=data)  # DER
    except (ssl.SSLError, ValueError):
        return False
    return ctx.cert_store_stats()["x509"] > 0
