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
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import urllib3

from imageferry.core.errors import RegistryError
from imageferry.registry.deadline import watch_pools

DEFAULT_TIMEOUT = 30.0
log = logging.getLogger(__name__)


def make_ssl_context(ca_file: Path | None, skip_verify: bool) -> ssl.SSLContext:
    """OS trust store by default; plus ``ca_file`` when given; nothing checked when skipping."""
    if skip_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
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
    """``address`` as urllib3 takes it: ``host:port`` is an http proxy."""
    text = address.strip()
    if "://" not in text:
        return "http://" + text
    if urlsplit(text).scheme.lower() not in ("http", "https"):
        raise RegistryError(
            f"the proxy for {scheme} URLs is {redact(text)}, a kind of proxy imageferry "
            "cannot use (only http:// and https:// proxies). Set HTTPS_PROXY / HTTP_PROXY "
            "to an http proxy, or list the registry in NO_PROXY",
        )
    return text


class Transport:
    """Picks a direct pool or a proxy pool per URL, as the environment's proxy settings say.

    ``timeout`` bounds a connect and each single read; whole exchanges are bounded by
    :class:`~imageferry.registry.deadline.Deadline`. ``ssl_context`` may be a function that
    makes one: it is then called once, when the first https URL is asked for (an http
    registry never pays for loading a trust store).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | Callable[[], ssl.SSLContext],
        maxsize: int,
        skip_verify: bool,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.timeout = timeout
        self._make_context = None if isinstance(ssl_context, ssl.SSLContext) else ssl_context
        self._lock = threading.Lock()
        self._kw: dict[str, object] = {
            "maxsize": maxsize,
            "block": False,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,
        }
        if isinstance(ssl_context, ssl.SSLContext):
            self._kw["ssl_context"] = ssl_context
        if skip_verify:
            self._kw["cert_reqs"] = "CERT_NONE"
            self._kw["assert_hostname"] = False
        self._direct = urllib3.PoolManager(**self._kw)  # type: ignore[arg-type]
        watch_pools(self._direct)
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        self._env = urllib.request.getproxies()
        self._bypass: dict[str, bool] = {}
        self._lock = threading.Lock()

    def pool_for(self, url: str) -> urllib3.PoolManager:
        """The pool for ``url``: direct, or through the proxy configured for its scheme."""
        parts = urlsplit(url)
        if self._make_context is not None and parts.scheme == "https":
            self._secure()
        proxy = self._env.get(parts.scheme)
        if not proxy or self._bypassed(parts.netloc):
            return self._direct
        with self._lock:
            if proxy not in self._proxies:
                address = proxy_url(proxy, parts.scheme)
                manager = urllib3.ProxyManager(address, **self._kw)  # type: ignore[arg-type]
                watch_pools(manager)
                self._proxies[proxy] = manager
            return self._proxies[proxy]

    def _bypassed(self, netloc: str) -> bool:
        """Whether NO_PROXY (or Windows' bypass list) exempts ``netloc``. Asked once per
        host: on Windows the answer may take DNS lookups."""
        # netloc, not hostname: NO_PROXY entries may name a port (host:port)
        if netloc not in self._bypass:
            self._bypass[netloc] = bool(urllib.request.proxy_bypass(netloc))
        return self._bypass[netloc]

    def _secure(self) -> None:
        """Make the TLS context now that an https URL needs it; give it to every pool."""
        with self._lock:
            if self._make_context is None:
                return
            context = self._make_context()
            self._kw["ssl_context"] = context
            for manager in (self._direct, *self._proxies.values()):
                manager.connection_pool_kw["ssl_context"] = context
            self._make_context = None

    def close(self) -> None:
        self._direct.clear()
        for pool in self._proxies.values():
            pool.clear()
