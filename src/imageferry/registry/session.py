"""One session per registry: TLS, credentials, auth, and HTTP errors turned into ours.

Every request names the scopes it needs; the session authenticates it,
answers a 401 challenge once, and raises :class:`RegistryError` (with
``status`` and ``temporary``) for anything else than the expected status.
Retrying is not done here but by the engine's one retry policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import urllib3

from imageferry.core.config import RegistryConfig
from imageferry.core.errors import AuthError, ConfigError, NotFoundError, RegistryError
from imageferry.core.reference import is_docker_hub
from imageferry.registry.auth import Authenticator, Scopes
from imageferry.registry.credentials import Credentials, docker_credentials, kept_password
from imageferry.registry.transport import Transport, make_ssl_context

Body = bytes | Iterable[bytes] | None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class RegistrySession:
    def __init__(
        self, cfg: RegistryConfig, *, config_dir: Path, skiptlsverify: bool, maxconn: int
    ) -> None:
        address = cfg.address
        self.name = cfg.display_name
        self.host = address.host
        api_host = "registry-1.docker.io" if is_docker_hub(address.host) else address.host
        self.base_url = f"{address.scheme}://{api_host}"
        ca_file = None
        if cfg.ca_file:
            ca_file = (config_dir / cfg.ca_file).resolve()
            if not ca_file.is_file():
                raise ConfigError(f"{self.name}: ca_file {ca_file} does not exist")
        skip = cfg.skiptlsverify if cfg.skiptlsverify is not None else skiptlsverify
        self.transport = Transport(make_ssl_context(ca_file, skip), maxconn * 2 + 4, skip)
        self.auth = Authenticator(self.transport, lambda: _credentials(cfg), address.host)

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        scopes: Scopes,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        ok: tuple[int, ...] = (200,),
        stream: bool = False,
        what: str = "",
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; raise a :class:`RegistryError` unless the status is in ``ok``."""
        url = self.url(path)
        replayable = body is None or isinstance(body, bytes)
        for attempt in range(2):
            sent = self.auth.header(scopes)
            all_headers = dict(headers or {})
            if sent:
                all_headers["Authorization"] = sent
            resp = self.send(method, url, all_headers, body, stream, what)
            if resp.status == 401:
                retry = self.auth.challenged(resp.headers.get("WWW-Authenticate"), scopes, sent)
                if retry and replayable and attempt == 0:
                    resp.drain_conn()
                    continue
            break
        if resp.status in ok:
            return resp
        raise self.error(resp, what or method)

    def send(
        self, method: str, url: str, headers: dict[str, str], body: Body, stream: bool, what: str
    ) -> urllib3.BaseHTTPResponse:
        """One raw HTTP exchange, no auth added (also used for redirects to other hosts)."""
        try:
            return self.transport.pool_for(url).request(
                method,
                url,
                headers=headers,
                body=body,  # type: ignore[arg-type]
                preload_content=not stream,
                decode_content=False,
                redirect=False,
                chunked=False,
            )
        except urllib3.exceptions.SSLError as exc:
            raise RegistryError(
                f"{what or method} at {self.name}: TLS failed ({exc.__class__.__name__}). "
                "Trust the registry's CA with 'ca_file:' in cfg.yaml, or set "
                "'skiptlsverify: true' for that registry",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise RegistryError(
                f"{what or method} at {self.name}: connection failed ({_brief(reason)})",
                temporary=True,
            ) from None

    def error(self, resp: urllib3.BaseHTTPResponse, what: str) -> RegistryError:
        """The error for an unexpected answer (reads and releases its body)."""
        status = resp.status
        detail, code = _error_detail(resp)
        text = f"{what} at {self.name}: HTTP {status}" + (f" {detail}" if detail else "")
        if status == 401:
            challenge = resp.headers.get("WWW-Authenticate") or ""
            expired = "invalid_token" in challenge
            return AuthError(
                text + ("" if expired else "; check user and password in cfg.yaml"),
                status=status,
                temporary=expired,
            )
        if status == 403:
            return AuthError(
                text + "; the user lacks permission for this repository", status=status
            )
        if status == 404:
            return NotFoundError(text, status=status, code=code)
        temporary = status >= 500 or status in (408, 429)
        return RegistryError(
            text,
            status=status,
            temporary=temporary,
            retry_after=_retry_after(resp.headers.get("Retry-After")),
            code=code,
        )

    def close(self) -> None:
        self.transport.close()


def _brief(reason: Any) -> str:
    text = str(reason)
    # urllib3 prefixes reasons with object reprs; keep the readable tail.
    return text.rsplit(": ", 1)[-1][:200] if ": " in text else text[:200]


def _error_detail(resp: urllib3.BaseHTTPResponse) -> tuple[str, str | None]:
    try:
        data = resp.data[: 64 * 1024]
    except Exception:
        return "", None
    finally:
        resp.release_conn()
    try:
        errors = json.loads(data)["errors"]
        first = errors[0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": "), first.get("code")
    except (ValueError, KeyError, IndexError, TypeError):
        return "", None


def _credentials(cfg: RegistryConfig) -> Credentials | None:
    """cfg.yaml's user and password (else the OS keyring's), else docker's config.json."""
    if cfg.user:
        password = cfg.password.get_secret_value() if cfg.password else ""
        password = password or kept_password(cfg.registry, cfg.user)
        return Credentials(cfg.user, password)
    return docker_credentials(cfg.address.host)
