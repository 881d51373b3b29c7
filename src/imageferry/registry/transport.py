"""HTTP connection pools: TLS trust (OS store, CA file, skip), proxies from the environment.

Proxies come from ``urllib.request.getproxies()``: ``HTTP(S)_PROXY``/``NO_PROXY``
everywhere, and on Windows, without them, the system proxy settings (Internet
Options), with their bypass list. A proxy address without a scheme is an http
proxy (as curl reads it); a SOCKS proxy is refused with a message.
"""

from __future__ import annotations

import importlib
import logging
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from imageferry.core.errors import RegistryError
from imageferry.registry.pool import Pool, Response

DEFAULT_TIMEOUT = 30.0
log = logging.getLogger(__name__)


def make_ssl_context(ca_file: Path | None, skip_verify: bool) -> ssl.SSLContext:
    """OS trust store by default; plus ``ca_file`` when given; nothing checked when skipping."""
    if skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_file is not None:
        ctx = ssl.create_default_context()
        ctx.load_verify_locations(cafile=str(ca_file))
        return ctx
    try:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except Exception as exc:
        return _fallback_context(exc)


def _fallback_context(exc: Exception) -> ssl.SSLContext:
    """Without truststore: certifi's bundle when installed, else OpenSSL's default paths."""
    reason = f"{type(exc).__name__}: {exc}"[:200]
    try:
        where = importlib.import_module("certifi").where()
        ctx = ssl.create_default_context(cafile=where)
        log.warning(
            "the OS trust store cannot be used (truststore: %s); trusting certifi's CA bundle "
            "%s instead. A registry signed by a company CA needs 'ca_file:' in cfg.yaml",
            reason,
            where,
        )
        return ctx
    except Exception:
        log.warning(
            "the OS trust store cannot be used (truststore: %s); trusting OpenSSL's default "
            "CA paths instead. A registry signed by a company CA needs 'ca_file:' in cfg.yaml",
            reason,
        )
        return ssl.create_default_context()


def redact(url: str) -> str:
    """``url`` without any user or password in it (for messages and logs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unreadable URL)"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def without_userinfo(url: str) -> str:
    """``url`` with its user and password dropped (never sent, never shown)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def proxy_url(address: str, scheme: str) -> str:
    """``address`` as a URL: ``host:port`` is an http proxy."""
    text = address.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        usable = bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is no number (a password with a '/' in it, unencoded)
        usable = False
    if not usable:
        raise RegistryError(
            f"the proxy address for {scheme} URLs (HTTP_PROXY / HTTPS_PROXY, or the system's "
            "proxy settings) is not a usable URL: write it as http://host:port, with any "
            "special character of a user or password percent-encoded (/ as %2F, @ as %40)"
        )
    if parts.scheme.lower() not in ("http", "https"):
        raise RegistryError(
            f"the proxy for {scheme} URLs is {redact(text)}, a kind of proxy imageferry "
            "cannot use (only http:// and https:// proxies). Set HTTPS_PROXY / HTTP_PROXY "
            "to an http proxy, or list the registry in NO_PROXY",
        )
    return text


class Transport:
    """Sends each request directly or through the proxy that the environment's proxy
    settings name for its URL, on connections kept per route.

    ``timeout`` bounds a connect and each single read; whole exchanges are bounded by
    :class:`~imageferry.registry.deadline.Deadline`. ``ssl_context`` may be a function that
    makes one: it is then called once, when the first https URL is asked for (an http
    registry never pays for loading a trust store).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        maxsize: int,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self._context = ssl_context if isinstance(ssl_context, ssl.SSLContext) else None
        self._make_context = ssl_context
        self._lock = threading.Lock()
        self._pool = Pool(timeout, maxsize, self._secure)
        self._env = urllib.request.getproxies()
        self._proxies: dict[str, str] = {}
        self._bypass: dict[str, bool] = {}

    def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | Iterable[bytes] | None
    ) -> Response:
        """Send one request (no redirect followed); the answer with its body unread."""
        return self._pool.request(method, url, headers, body, self.proxy_for(url))

    def proxy_for(self, url: str) -> str | None:
        """The proxy for ``url`` (None: direct), as the proxy settings for its scheme say."""
        parts = urlsplit(url)
        proxy = self._env.get(parts.scheme)
        if not proxy or self._bypassed(parts.netloc):
            return None
        with self._lock:
            if proxy not in self._proxies:
                self._proxies[proxy] = proxy_url(proxy, parts.scheme)
            return self._proxies[proxy]

    def _bypassed(self, netloc: str) -> bool:
        """Whether NO_PROXY (or Windows' bypass list) exempts ``netloc``. Asked once per
        host: on Windows the answer may take DNS lookups."""
        # netloc, not hostname: NO_PROXY entries may name a port (host:port)
        if netloc not in self._bypass:
            self._bypass[netloc] = bool(urllib.request.proxy_bypass(netloc))
        return self._bypass[netloc]

    def _secure(self) -> ssl.SSLContext:
        """The TLS context, made when the first https URL needs it."""
        with self._lock:
            if self._context is None:
                self._context = self._make_context()  # type: ignore[operator]
            return self._context

    def close(self) -> None:
        self._pool.close()
