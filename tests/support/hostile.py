"""A scripted, hostile registry on 127.0.0.1: one function answers every request.

With ``ca`` it speaks https, and also plain http on the same port (the first
byte of a connection tells which), so a test can catch what a client sends
after an https → http redirect to the very same host and port.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    tls: bool


@dataclass
class Hostile:
    handler: Callable[[BaseHTTPRequestHandler], None]
    ca: trustme.CA | None = None
    seen: list[Seen] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)  # body bytes written per answer

    def __post_init__(self) -> None:
        hostile = self
        context = None
        if self.ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert("127.0.0.1").configure_cert(context)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except OSError:
                    self.close_connection = True

            def __getattr__(self, name: str):
                if name.startswith("do_"):
                    return self._answer
                raise AttributeError(name)

            def _answer(self) -> None:
                tls = isinstance(self.connection, ssl.SSLSocket)
                hostile.seen.append(Seen(self.command, self.path, dict(self.headers), tls))
                hostile.handler(self)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):  # noqa: ANN202
                sock, addr = self.socket.accept()
                if context is not None:
                    sock.settimeout(10)
                    if sock.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
                        sock = context.wrap_socket(sock, server_side=True)
                    sock.settimeout(None)
                return sock, addr

            def handle_error(self, request, client_address) -> None:  # noqa: ANN001
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.port}"

    def ca_file(self, folder: Path) -> Path:
        assert self.ca is not None
        path = folder / "hostile-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def reply(
    req: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    req.send_response(status)
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(body)


def flood(hostile: Hostile, req: BaseHTTPRequestHandler, status: int, total: int) -> None:
    """Answer ``total`` bytes of JSON-ish junk; record how many the client took."""
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(total))
    req.end_headers()
    block = b" " * (1 << 20)
    sent = 0
    try:
        while sent < total:
            req.wfile.write(block[: total - sent])
            sent += min(len(block), total - sent)
    except OSError:
        req.close_connection = True
    hostile.sent.append(sent)


def chunked(req: BaseHTTPRequestHandler, body: bytes, content_type: str) -> None:
    """Answer ``body`` in chunked transfer encoding: no Content-Length to go by."""
    req.send_response(200)
    req.send_header("Content-Type", content_type)
    req.send_header("Transfer-Encoding", "chunked")
    req.end_headers()
    try:
        for i in range(0, len(body), 1 << 16):
            part = body[i : i + (1 << 16)]
            req.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        req.wfile.write(b"0\r\n\r\n")
    except OSError:
        req.close_connection = True


def drip(req: BaseHTTPRequestHandler, headers: dict[str, str], every: float = 0.2) -> None:
    """Headers, then a body of one byte every ``every`` seconds, until the client leaves."""
    req.send_response(200)
    for key, value in headers.items():
        req.send_header(key, value)
    req.send_header("Content-Length", str(1 << 30))
    req.end_headers()
    try:
        while True:
            req.wfile.write(b" ")
            req.wfile.flush()
            time.sleep(every)
    except OSError:
        req.close_connection = True


def errors_json(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()
