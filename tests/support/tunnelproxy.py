"""A loopback forward proxy that opens ``CONNECT`` tunnels (as a company proxy does for
https), asking for a user and password when given one. Every CONNECT is recorded."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from socketserver import StreamRequestHandler, ThreadingTCPServer


class TunnelProxy:
    def __init__(self, user: str | None = None, password: str = "") -> None:
        self.connects: list[tuple[str, str | None]] = []  # (host:port, credentials sent)
        wanted = f"{user}:{password}" if user is not None else None
        proxy = self

        class Handler(StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(65536).decode("latin-1")
                headers = {}
                while (header := self.rfile.readline(65536)) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                method, _, rest = line.partition(" ")
                where = rest.split(" ")[0]
                sent = headers.get("proxy-authorization")
                creds = base64.b64decode(sent.split()[1]).decode() if sent else None
                proxy.connects.append((where, creds))
                if method != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                if wanted is not None and creds != wanted:
                    self.wfile.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n'
                    )
                    return
                host, _, port = where.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=30)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
                pump.start()
                _pipe(self.connection, upstream)
                pump.join(30)

        ThreadingTCPServer.allow_reuse_address = True
        self.server = ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"http://{at}127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(1 << 16):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
