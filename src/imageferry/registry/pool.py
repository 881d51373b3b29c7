"""HTTP/1.1 connections kept for reuse, on the standard library's ``http.client``.

A registry run is many small exchanges (a manifest, a HEAD, a token) and a few
long ones (blobs); what it needs of HTTP is narrow: keep-alive connections per
origin, a socket timeout, a body sent from bytes or from an iterator with its
``Content-Length``, an answer read piece by piece, and the direct or proxied
route to each origin. This module is that and no more, so that a run starts
without importing a general HTTP library (urllib3 took a fifth of a rerun's
time on import alone).

Routes: an http origin through an http(s) proxy is asked in absolute form; an
https origin through an http proxy gets a ``CONNECT`` tunnel, and TLS runs to
the origin inside it. A ``user:password@`` in the proxy address becomes a
``Proxy-Authorization`` header for the proxy alone.
"""

from __future__ import annotations

import base64
import http.client
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, overload
from urllib.parse import quote, unquote, urlsplit

from imageferry.core.errors import RegistryError
from imageferry.registry.deadline import current_expired, watch

NETWORK_ERRORS = (http.client.HTTPException, OSError)
# a kept connection the server closed meanwhile fails like this on its next request
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE = ("GET", "HEAD")
_URL_SAFE = "/:?#[]@!$&'()*+,;=%~"  # what a URL may hold as it is (reserved, and escapes)


class ConnectError(OSError):
    """No connection could be made: refused, unreachable, unknown host, or no answer to
    the connect within the timeout (the request itself was never sent)."""


def _create_connection(
    address: tuple[str, int], timeout: Any = None, source_address: Any = None
) -> socket.socket:
    host, port = address
    try:  # bytes: a str host is looked up through the idna codec, an import of its own
        name = host.encode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna")
    try:
        return socket.create_connection((name, port), timeout, source_address)  # type: ignore[arg-type]
    except OSError as exc:
        if exc.errno is not None and exc.strerror:
            raise ConnectError(exc.errno, exc.strerror) from exc
        raise ConnectError(str(exc) or type(exc).__name__) from exc


class _Plain(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = _create_connection


class _Secure(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._create_connection = _create_connection

    def _tunnel(self) -> None:
        """CONNECT names an IPv6 address in brackets (Python 3.11's http.client does not;
        TLS afterwards checks the address without them)."""
        host = self._tunnel_host  # type: ignore[has-type]
        if host and ":" in host and not host.startswith("["):
            self._tunnel_host = f"[{host}]"
        try:
            super()._tunnel()  # type: ignore[misc]
        finally:
            self._tunnel_host = host


class Headers:
    """An answer's headers: :meth:`get` in any case; a repeated header's values are
    joined by ", " (as one header with a list would say it)."""

    def __init__(self, message: http.client.HTTPMessage) -> None:
        self._message = message

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        values = self._message.get_all(name)
        return ", ".join(values) if values else default


class _Socket:
    """What a deadline cuts: the socket an answer arrives on (http.client may already
    have let go of it, when the server said ``Connection: close``)."""

    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock


class Response:
    """An answer whose headers are read; read its body with :meth:`read`, then
    :meth:`release_conn` (the connection is kept when the body was read to its end)
    or :meth:`close` (the connection is dropped)."""

    def __init__(
        self, pool: Pool, key: tuple, conn: http.client.HTTPConnection, raw: Any, sock: Any
    ) -> None:
        self.status: int = raw.status
        self.headers = Headers(raw.msg)
        self.connection = _Socket(sock)
        self._pool, self._key, self._raw = pool, key, raw
        self._conn: http.client.HTTPConnection | None = conn

    def read(self, amount: int) -> bytes:
        """Up to ``amount`` bytes of the body; ``b""`` at its end. A body cut short
        raises (http.client would end it quietly when the server closes early)."""
        data = self._raw.read(amount)
        if not data and amount and self._raw.length:
            raise http.client.IncompleteRead(b"", self._raw.length)
        return data

    def close(self) -> None:
        """Drop the connection (the body may be unread)."""
        conn, self._conn = self._conn, None
        self._raw.close()
        if conn is not None:
            conn.close()

    def release_conn(self) -> None:
        """Keep the connection for the next request when its body was read to the end."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._raw.isclosed():
            self._pool.give_back(self._key, conn)
        else:
            self._raw.close()
            conn.close()


def _proxy_header(proxy: str) -> dict[str, str]:
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _host_port(parts: Any, scheme: str) -> tuple[str, int]:
    host = parts.hostname or ""
    return host, parts.port or _DEFAULT_PORTS[scheme]


class Pool:
    """Idle connections per route (at most ``maxsize`` each; more may be open at once,
    the surplus is closed when handed back). Thread-safe."""

    def __init__(self, timeout: float, maxsize: int, context: Callable[[], ssl.SSLContext]):
        self.timeout = timeout
        self._maxsize = maxsize
        self._context = context
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None,
        proxy: str | None,
    ) -> Response:
        """Send one request and read the answer's headers. A GET or HEAD sent on a kept
        connection that the server had closed meanwhile goes again on a new one."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        key = (scheme, parts.netloc.lower(), proxy)
        target = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
        if proxy is not None and scheme == "http":  # absolute form, to the proxy
            target = url
            headers = {"Host": parts.netloc, **_proxy_header(proxy), **headers}
        target = quote(target, safe=_URL_SAFE)  # a Location may hold spaces or non-ASCII
        send = partial(
            self._exchange, key, method=method, target=target, headers=headers, body=body
        )
        conn, kept = self._take(key, scheme, parts, proxy)
        try:
            return send(conn)
        except _STALE:
            # only a request that changes nothing goes again: a POST or PUT the server
            # took before it dropped the connection must not be sent twice
            if not (kept and method in _SAFE and body is None) or current_expired() is not None:
                raise
        return send(self._new(scheme, parts, proxy))

    def _exchange(
        self,
        key: tuple,
        conn: http.client.HTTPConnection,
        *,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | Iterable[bytes] | None,
    ) -> Response:
        """One request on ``conn`` up to the answer's headers; ``conn`` is closed when
        that fails."""
        try:
            watch(conn)
            if conn.sock is None:
                _connect(conn)
            try:
                conn.request(method, target, body=body, headers=headers)  # type: ignore[arg-type]
            except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as sent:
                # the server may have answered (and closed) before taking the whole body:
                # that answer (a 401, a 413) says more than the broken pipe
                sock = conn.sock
                try:
                    return Response(self, key, conn, conn.getresponse(), sock)
                except NETWORK_ERRORS:
                    raise sent from None
            sock = conn.sock
            return Response(self, key, conn, conn.getresponse(), sock)
        except BaseException:
            conn.close()
            raise

    def _take(
        self, key: tuple, scheme: str, parts: Any, proxy: str | None
    ) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not _dropped(conn):
                    return conn, True
                conn.close()
        return self._new(scheme, parts, proxy), False

    def _new(self, scheme: str, parts: Any, proxy: str | None) -> http.client.HTTPConnection:
        host, port = _host_port(parts, scheme)
        secure = self._context() if scheme == "https" else None
        if proxy is None:
            if secure is None:
                return _Plain(host, port, self.timeout)
            return _Secure(host, port, self.timeout, secure)
        via = urlsplit(proxy)
        via_scheme = via.scheme.lower()
        via_host, via_port = _host_port(via, via_scheme)
        if secure is None:  # plain http through the proxy: absolute-form requests
            if via_scheme == "https":
                return _Secure(via_host, via_port, self.timeout, self._context())
            return _Plain(via_host, via_port, self.timeout)
        if via_scheme == "https":
            raise RegistryError(
                f"the proxy for https URLs is an https:// proxy ({via_host}:{via_port}); "
                "imageferry reaches https registries only through an http:// proxy (a "
                "CONNECT tunnel). Write the proxy address as http://host:port, or list the "
                "registry in NO_PROXY"
            )
        conn = _Secure(via_host, via_port, self.timeout, secure)
        conn.set_tunnel(host, port, headers=_proxy_header(proxy))
        return conn

    def give_back(self, key: tuple, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and conn.sock is not None and len(idle) < self._maxsize:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when handed back."""
        with self._lock:
            self._closed = True
            idle = [conn for conns in self._idle.values() for conn in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


def _connect(conn: http.client.HTTPConnection) -> None:
    """Open ``conn`` (through its proxy's tunnel, if any, and TLS); a proxy that refuses
    the tunnel is an error to fix, not a network fault to retry."""
    try:
        conn.connect()
    except OSError as exc:
        text = str(exc)
        if isinstance(exc, ConnectError) or not text.startswith("Tunnel connection failed"):
            raise
        status = text.partition(": ")[2][:100]
        where = f"{conn._tunnel_host}:{conn._tunnel_port}"  # type: ignore[attr-defined]
        raise RegistryError(
            f"the proxy {conn.host}:{conn.port} refused a tunnel to {where} ({status}); "
            "check the proxy address in HTTPS_PROXY, and its user and password "
            "(http://user:password@host:port)",
            temporary=status[:1] == "5",  # the proxy cannot reach it just now
        ) from None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (or has bytes nobody asked
    for): readable while idle means it cannot be used."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # ValueError: a descriptor past select's range
        return False  # then the request finds out, and a stale one is replaced once
