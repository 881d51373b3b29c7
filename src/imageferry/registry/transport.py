"""HTTP connection pools: TLS trust (OS store, CA file, skip), proxies from the environment."""

from __future__ import annotations

import ssl
import urllib.request
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import urllib3

CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0


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
    except Exception:  # pragma: no cover - truststore unavailable on this OS
        return ssl.create_default_context()


class Transport:
    """Picks a direct pool or a proxy pool per URL, as the environment's proxy settings say."""

    def __init__(self, ssl_context: ssl.SSLContext, maxsize: int, skip_verify: bool) -> None:
        self._kw: dict[str, object] = {
            "maxsize": maxsize,
            "block": False,
            "ssl_context": ssl_context,
            "timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            "retries": False,
        }
        if skip_verify:
            self._kw["cert_reqs"] = "CERT_NONE"
            self._kw["assert_hostname"] = False
        self._direct = urllib3.PoolManager(**self._kw)  # type: ignore[arg-type]
        self._proxies: dict[str, urllib3.ProxyManager] = {}
        self._env = urllib.request.getproxies()

    def pool_for(self, url: str) -> urllib3.PoolManager:
        parts = urlsplit(url)
        proxy = self._env.get(parts.scheme)
        # netloc, not hostname: NO_PROXY entries may name a port (host:port)
        if not proxy or urllib.request.proxy_bypass(parts.netloc):
            return self._direct
        if proxy not in self._proxies:
            self._proxies[proxy] = urllib3.ProxyManager(proxy, **self._kw)  # type: ignore[arg-type]
        return self._proxies[proxy]

    def close(self) -> None:
        self._direct.clear()
        for pool in self._proxies.values():
            pool.clear()
