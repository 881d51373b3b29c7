"""One session per registry: TLS, credentials, auth, and HTTP errors turned into ours.

Every request names the scopes it needs; the session authenticates it,
answers a 401 challenge once, and raises :class:`RegistryError` (with
``status`` and ``temporary``) for anything else than the expected status.
Retrying is decided by the engine's one retry policy: it retries each
operation it calls, and hands the session that policy as :attr:`retry` for
the requests inside one operation that are worth retrying on their own (the
POST that opens an upload).

Credentials go only to the registry's own origin (scheme, host and port as
configured): a redirect or upload location elsewhere, or on the same host
but over another scheme, gets no Authorization. Every exchange is bounded in
time (``timeout``) and every body read in memory is bounded in size.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

from imageferry.core.config import RegistryConfig
from imageferry.core.errors import AuthError, NotFoundError, RegistryError
from imageferry.core.reference import is_docker_hub
from imageferry.registry.auth import Authenticator, Scopes
from imageferry.registry.credentials import Credentials, docker_credentials, kept_password
from imageferry.registry.deadline import Deadline, current_expired, forget_connection
from imageferry.registry.exchange import (
    ERROR_LIMIT,
    Reply,
    Stream,
    read_body,
    release,
    retry_after,
    timed_out,
)
from imageferry.registry.pool import NETWORK_ERRORS, ConnectError, Headers, Response
from imageferry.registry.transport import (
    DEFAULT_TIMEOUT,
    Transport,
    make_ssl_context,
    redact,
    without_userinfo,
)

Body = bytes | Iterable[bytes] | None
T = TypeVar("T")


class Retry(Protocol):
    """Runs ``action`` with the run's retry policy (``what`` names it in warnings)."""

    def __call__(self, action: Callable[[], T], what: str) -> T: ...


def once(action: Callable[[], T], what: str) -> T:
    """No retry: the default until the engine hands the session its policy."""
    return action()


SMALL_LIMIT = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 5
_PLAIN_HTTP_SIGNS = ("wrong version number", "record layer failure", "packet length too long")
# a TLS connection closed mid-exchange: a broken connection, not a trust problem
_TLS_CLOSED = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
_HTTPS_PORT_SIGN = b"client sent an http request to an https server"


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.rpartition("@")[2].lower()


class RegistrySession:
    def __init__(
        self,
        cfg: RegistryConfig,
        *,
        config_dir: Path,
        skiptlsverify: bool,
        maxconn: int,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        address = cfg.address
        self.name = cfg.display_name
        self.host = address.host
        self.scheme = address.scheme
        api_host = "registry-1.docker.io" if is_docker_hub(address.host) else address.host
        self.base_url = f"{address.scheme}://{api_host}"
        self.timeout = timeout
        self.retry: Retry = once
        cfg.require_env()
        ca_file = cfg.ca_path(config_dir)
        skip = cfg.skiptlsverify if cfg.skiptlsverify is not None else skiptlsverify
        context = lambda: make_ssl_context(ca_file, skip)  # noqa: E731 - made at the 1st https
        self.transport = Transport(context, maxconn * 2 + 4, timeout)
        self.auth = Authenticator(
            self.transport, lambda: _credentials(cfg), address.host, address.scheme
        )

    def url(self, path: str) -> str:
        return without_userinfo(path) if "://" in path else self.base_url + path

    def resolve(self, base: str, location: str) -> str:
        """A Location header (absolute or relative) against the URL that answered it."""
        url = without_userinfo(urljoin(self.url(base), location))
        if urlsplit(url).scheme not in ("http", "https"):
            raise RegistryError(
                f"{self.name}: the registry sent us to an unusable location {redact(url)[:200]}"
            )
        return url

    def is_own(self, url: str) -> bool:
        """Whether ``url`` is the registry itself (so it may get credentials)."""
        return _origin(url) == _origin(self.base_url)

    def request(
        self,
        method: str,
        path: str,
        scopes: Scopes,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        ok: tuple[int, ...] = (200,),
        limit: int = SMALL_LIMIT,
        what: str = "",
    ) -> Reply:
        """Send one request and read its answer (at most ``limit`` bytes).

        Raises a :class:`RegistryError` unless the status is in ``ok``. Without a
        streamed body, the whole exchange must end within ``timeout``."""
        what = what or method
        streamed = not (body is None or isinstance(body, bytes))
        deadline = Deadline(self.timeout)
        try:
            with deadline.bound():
                if streamed:  # an upload: its stalls are bounded by the socket timeouts
                    deadline.pause()
                resp = self._exchange(method, self.url(path), scopes, headers, body, what)
            self._check_in_time(resp, what, deadline)
            deadline.extend()
            deadline.attach(resp.connection)
            if resp.status not in ok:
                raise self._error(resp, what, deadline)
            data, complete = self._read(resp, limit, what, deadline)
            self._check_in_time(resp, what, deadline)
        except BaseException:
            deadline.close()
            raise
        release(resp, deadline, complete)
        if not complete:
            raise RegistryError(f"{what} at {self.name}: answer larger than {_size(limit)}")
        return Reply(resp.status, resp.headers, data)

    def open(
        self,
        method: str,
        path: str,
        scopes: Scopes,
        *,
        headers: dict[str, str],
        what: str,
        ok: tuple[int, ...] = (200,),
    ) -> Stream:
        """An answer (status in ``ok``) whose body is read as it is consumed, redirects
        followed."""
        url = self.url(path)
        for _ in range(MAX_HOPS + 1):
            deadline = Deadline(self.timeout)
            try:
                with deadline.bound():
                    resp = self._exchange(method, url, scopes, headers, None, what)
                self._check_in_time(resp, what, deadline)
                deadline.attach(resp.connection)  # the socket the body comes on
            except BaseException:
                deadline.close()
                raise
            if resp.status in ok:
                return Stream(resp, deadline, what, self.name)
            if resp.status not in REDIRECTS:
                raise self._error(resp, what, deadline)
            location = resp.headers.get("Location")
            _, complete = self._read(resp, ERROR_LIMIT, what, deadline)
            release(resp, deadline, complete)
            if not location:
                raise RegistryError(f"{what} at {self.name}: redirect without a Location")
            url = self.resolve(url, location)
        raise RegistryError(f"{what} at {self.name}: more than {MAX_HOPS} redirects")

    def _exchange(
        self,
        method: str,
        url: str,
        scopes: Scopes,
        headers: dict[str, str] | None,
        body: Body,
        what: str,
    ) -> Response:
        """Send, answering a 401 challenge once; credentials only to the registry itself."""
        own = self.is_own(url)
        replayable = body is None or isinstance(body, bytes)
        for attempt in range(2):
            sent = self.auth.header(scopes) if own else None
            all_headers = dict(headers or {})
            if sent:
                all_headers["Authorization"] = sent
            resp = self.send(method, url, all_headers, body, what)
            if resp.status == 401 and own:
                retry = self.auth.challenged(resp.headers.get("WWW-Authenticate"), scopes, sent)
                if retry and replayable and attempt == 0:
                    _discard(resp)
                    continue
            break
        if resp.status == 401 and not own:
            _discard(resp)
            raise AuthError(
                f"{what} at {self.name}: the registry sent us on to {redact(url)}, which asks "
                f"for credentials; imageferry sends them only to {self.base_url} itself "
                "(check the registry's external URL or reverse proxy settings)",
                status=401,
            )
        return resp

    def send(
        self, method: str, url: str, headers: dict[str, str], body: Body, what: str
    ) -> Response:
        """One raw HTTP exchange up to the headers of the answer; no auth added."""
        try:
            return self.transport.request(method, url, headers, body)
        except NETWORK_ERRORS as exc:
            raise self._failure(exc, what or method) from None

    def _failure(self, exc: BaseException, what: str) -> RegistryError:
        expired = current_expired()
        if expired is not None:
            return timed_out(what, self.name, expired)
        if isinstance(exc, TimeoutError) and not isinstance(exc, ConnectError):
            return RegistryError(
                f"{what} at {self.name}: no answer within {self.timeout:g} s "
                "(raise 'timeout' in cfg.yaml if the registry is only slow)",
                temporary=True,
            )
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, _TLS_CLOSED):
            if any(sign in str(exc).lower() for sign in _PLAIN_HTTP_SIGNS):
                return RegistryError(
                    f"{what} at {self.name}: this port speaks plain http, not https: "
                    f"use http://{self.host} in cfg.yaml"
                )
            return RegistryError(
                f"{what} at {self.name}: TLS failed ({exc.__class__.__name__}). "
                "Trust the registry's CA with 'ca_file:' in cfg.yaml, or set "
                "'skiptlsverify: true' for that registry",
            )
        reason = getattr(exc, "reason", None) or exc
        return RegistryError(
            f"{what} at {self.name}: connection failed ({_brief(reason)})", temporary=True
        )

    def _check_in_time(self, resp: Response, what: str, deadline: Deadline) -> None:
        """An answer cut by the deadline may look whole: never use one."""
        if deadline.expired:
            release(resp, deadline, False)
            raise timed_out(what, self.name, deadline)

    def _read(
        self, resp: Response, limit: int, what: str, deadline: Deadline
    ) -> tuple[bytes, bool]:
        try:
            return read_body(resp, limit)
        except NETWORK_ERRORS as exc:
            release(resp, deadline, False)
            if deadline.expired:
                raise timed_out(what, self.name, deadline) from None
            raise self._failure(exc, what) from None

    def _error(self, resp: Response, what: str, deadline: Deadline) -> RegistryError:
        """The error for an unexpected answer (reads at most 64 KiB of it, releases it)."""
        data, complete = self._read(resp, ERROR_LIMIT, what, deadline)
        release(resp, deadline, complete)
        return self.error_for(resp.status, resp.headers, data, what)

    def error_for(self, status: int, headers: Headers, data: bytes, what: str) -> RegistryError:
        detail, code = _error_detail(data)
        text = f"{what} at {self.name}: HTTP {status}" + (f" {detail}" if detail else "")
        if status == 400 and _HTTPS_PORT_SIGN in data[:512].lower():
            return RegistryError(
                f"{text}: this port speaks https, not http: use https://{self.host} in cfg.yaml",
                status=status,
            )
        if status == 400 and not data and self.scheme == "http":  # a HEAD has no body to tell
            return RegistryError(
                f"{text}: if this port speaks https, use https://{self.host} in cfg.yaml",
                status=status,
            )
        if status == 401:
            expired = "invalid_token" in (headers.get("WWW-Authenticate") or "")
            return AuthError(
                text + ("" if expired else f"; {self.auth.credentials_advice()}"),
                status=status,
                temporary=expired,
            )
        if status == 403:
            return AuthError(
                text + "; the user lacks permission for this repository", status=status
            )
        if status == 404:
            return NotFoundError(text, status=status, code=code)
        return RegistryError(
            text,
            status=status,
            temporary=status >= 500 or status in (408, 429),
            retry_after=retry_after(headers.get("Retry-After")),
            code=code,
        )

    def close(self) -> None:
        self.transport.close()


def _size(limit: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit % scale == 0:
            return f"{limit // scale} {unit}"
    return f"{limit} bytes"


def _discard(resp: Response) -> None:
    """Drop an answer we do not need, reading at most 64 KiB of it."""
    try:
        _, complete = read_body(resp, ERROR_LIMIT)
    except NETWORK_ERRORS:
        complete = False
    forget_connection()
    release(resp, None, complete)


def _brief(reason: Any) -> str:
    text = redact(str(reason))
    # keep the readable tail of a reason that names its layers ("Tunnel connection failed: 407 ...")
    return text.rsplit(": ", 1)[-1][:200] if ": " in text else text[:200]


def _error_detail(data: bytes) -> tuple[str, str | None]:
    try:
        first = json.loads(data)["errors"][0]
        detail = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
        code = first.get("code")
        printable = "".join(c if c.isprintable() else "?" for c in detail[:500])
        return printable, code if isinstance(code, str) else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return "", None


def _credentials(cfg: RegistryConfig) -> Credentials | None:
    """cfg.yaml's user and password (else the OS keyring's), else docker's config.json."""
    if cfg.user:
        password = cfg.password.get_secret_value() if cfg.password else ""
        if password:
            return Credentials(cfg.user, password, cfg.credentials_origin)
        kept = kept_password(cfg.registry, cfg.user)
        if kept:
            return Credentials(cfg.user, kept, "the OS keyring (service imageferry)")
        return Credentials(cfg.user, "", cfg.credentials_origin)
    return docker_credentials(cfg.address.host)
