"""A loopback HTTP proxy in front of the real registry that injects scripted faults.

``rule(method, path, count)`` decides per request: None forwards it; a
:class:`Fault` answers with a status, resets the connection after some body
bytes (of the answer, or of the request), stalls after the answer's headers,
or streams slowly. Every request is recorded in ``log``.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer this instead of forwarding
    headers: tuple[tuple[str, str], ...] = ()
    reset_after: int | None = None  # forward, but reset after this many body bytes
    rate: int | None = None  # forward bodies (both ways) at this many bytes per second
    reset_fraction: float | None = None  # forward, but reset after this share of the answer
    reset_request_after: int | None = None  # read this many request body bytes, then reset
    stall: float | None = None  # forward, send the answer's headers, then nothing for so long
    strip: tuple[str, ...] = ()  # forward without these request headers (e.g. "Range")
    close_after: int | None = None  # forward, but close cleanly (no reset) after so many bytes


Rule = Callable[[str, str, int], Fault | None]


class FaultProxy:
    def __init__(self, upstream_port: int, rule: Rule | None = None) -> None:
        self.upstream_port = upstream_port
        self.rule: Rule = rule or (lambda m, p, n: None)
        self.log: list[tuple[str, str]] = []
        self.ranges: list[str] = []  # the Range headers of the requests, in order
        self.sent_up: dict[str, int] = {}  # request body bytes forwarded, per method
        self.sent_down: dict[str, int] = {}  # answer body bytes forwarded, per method
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (TimeoutError, ConnectionError):
                    self.close_connection = True

            def __getattr__(self, name: str):  # do_GET, do_PUT, ... all proxy
                if name.startswith("do_"):
                    return lambda: proxy._forward(self)
                raise AttributeError(name)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.log if m == method and fragment in p)

    def _add(self, counts: dict[str, int], method: str, n: int) -> None:
        with self._lock:
            counts[method] = counts.get(method, 0) + n

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _forward(self, req: BaseHTTPRequestHandler) -> None:
        method, path = req.command, req.path
        kind = _kind(path)
        with self._lock:
            self.log.append((method, path))
            if req.headers.get("Range"):
                self.ranges.append(req.headers["Range"])
            key = (method, kind)
            self._counts[key] = self._counts.get(key, 0) + 1
            n = self._counts[key]
        fault = self.rule(method, path, n)
        length = int(req.headers.get("Content-Length") or 0)
        if fault is not None and fault.reset_request_after is not None:
            _drain(req, min(length, fault.reset_request_after))
            _reset(req.connection)
            req.close_connection = True
            return
        if fault is not None and fault.status is not None:
            _drain(req, length)
            req.send_response(fault.status)
            for k, v in fault.headers:
                req.send_header(k, v)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        stripped = {h.lower() for h in (fault.strip if fault is not None else ())}
        for k, v in req.headers.items():
            if k.lower() not in HOP_HEADERS and k.lower() not in stripped:
                upstream.putheader(k, v)
        upstream.endheaders()
        left = length
        step = 64 * 1024 if fault is not None and fault.rate else 1 << 20
        while left > 0:
            chunk = req.rfile.read(min(left, step))
            if not chunk:
                break
            upstream.send(chunk)
            self._add(self.sent_up, method, len(chunk))
            left -= len(chunk)
            if fault is not None and fault.rate:
                time.sleep(len(chunk) / fault.rate)
        resp = upstream.getresponse()
        body_len = resp.getheader("Content-Length")
        body = None if body_len is not None or method == "HEAD" else resp.read()
        req.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS and not (
                body is not None and k.lower() == "content-length"
            ):
                req.send_header(k, v)
        if body is not None:
            req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if method == "HEAD":
            upstream.close()
            return
        if fault is not None and fault.stall is not None:
            req.wfile.flush()
            _stall(req, fault.stall)
            upstream.close()
            return
        reset_after = _reset_point(fault, body_len if body is None else str(len(body)))
        sent = 0
        source = iter([body]) if body is not None else iter(lambda: resp.read(64 * 1024), b"")
        cut = reset_after
        if cut is None and fault is not None:
            cut = fault.close_after
        for chunk in source:
            if cut is not None and sent + len(chunk) > cut:
                req.wfile.write(chunk[: max(0, cut - sent)])
                self._add(self.sent_down, method, max(0, cut - sent))
                req.wfile.flush()
                if reset_after is not None:
                    _reset(req.connection)
                req.close_connection = True  # else the server closes it cleanly: a FIN
                upstream.close()
                return
            req.wfile.write(chunk)
            self._add(self.sent_down, method, len(chunk))
            sent += len(chunk)
            if fault is not None and fault.rate:
                time.sleep(len(chunk) / fault.rate)
        upstream.close()


def _kind(path: str) -> str:
    for part in ("/blobs/uploads", "/blobs/", "/manifests/"):
        if part in path:
            return part.strip("/")
    return path


def _reset_point(fault: Fault | None, length: str | None) -> int | None:
    """After how many answer bytes to reset (None: never)."""
    if fault is None:
        return None
    if fault.reset_fraction is not None and length is not None and int(length) > 0:
        return int(int(length) * fault.reset_fraction)
    return fault.reset_after


def _stall(req: BaseHTTPRequestHandler, seconds: float) -> None:
    """Send nothing for ``seconds`` (or until the client hangs up), then drop the connection."""
    req.connection.settimeout(seconds)
    try:
        req.connection.recv(1)  # returns when the client closes, or times out
    except OSError:
        pass
    req.close_connection = True


def _drain(req: BaseHTTPRequestHandler, length: int) -> None:
    while length > 0:
        chunk = req.rfile.read(min(length, 1 << 20))
        if not chunk:
            return
        length -= len(chunk)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
