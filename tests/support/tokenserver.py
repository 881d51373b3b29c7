"""A small Bearer token server for the real registry's ``auth: token`` mode.

Issues RS256 JWTs whose ``x5c`` header carries a self-signed certificate; the
registry trusts it through ``rootcertbundle``. Counts the token requests.

Besides docker's GET with Basic credentials it answers the OAuth2 POST with
``grant_type=refresh_token`` (docker's identity tokens, as Azure ACR and
Harbor OIDC logins store them) for the tokens in ``refresh_tokens``, and it
can be made to fail its next requests (``fail_next`` answers of ``fail_status``).
"""

from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "imageferry-test-registry"
ISSUER = "imageferry-test-issuer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(
        self, folder: Path, users: dict[str, str], lifetime: int = 300, catalog: bool = True
    ) -> None:
        self.users = users
        self.refresh_tokens: dict[str, str] = {}  # refresh token → user
        self.fail_next = 0
        self.fail_status = 503
        self.catalog = catalog
        self.lifetime = lifetime
        self.requests: list[dict] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imageferry test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, False, False, False),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.bundle = folder / "token-root.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if not server._failing(self):
                    server._handle(self)

            def do_POST(self) -> None:  # noqa: N802
                if not server._failing(self):
                    server._handle_refresh(self)

        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def registry_auth(self) -> dict:
        return {
            "token": {
                "realm": self.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(self.bundle),
            }
        }

    def start(self) -> TokenServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _failing(self, req: BaseHTTPRequestHandler) -> bool:
        with self._lock:
            failing = self.fail_next > 0
            self.fail_next -= 1 if failing else 0
        if failing:
            self.requests.append({"failed": self.fail_status})
            _drain(req)
            _answer(req, self.fail_status, b"", (("Retry-After", "1"),))
        return failing

    def _handle_refresh(self, req: BaseHTTPRequestHandler) -> None:
        """The OAuth2 token endpoint: a refresh-token grant, scopes space-separated."""
        form = parse_qs(_drain(req).decode())
        grant = (form.get("grant_type") or [""])[0]
        user = self.refresh_tokens.get((form.get("refresh_token") or [""])[0])
        if grant != "refresh_token" or user is None:
            _answer(req, 401, b'{"error": "invalid_grant"}')
            return
        scopes = " ".join(form.get("scope", [])).split()
        self.requests.append({"user": user, "scopes": scopes, "grant": grant})
        doc = {"access_token": self._jwt(user, self._access(user, scopes)), "expires_in": 300}
        _answer(req, 200, json.dumps(doc).encode())

    def _access(self, user: str | None, scopes: list[str]) -> list[dict]:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            granted = actions.split(",") if user else []
            if kind == "registry" and not self.catalog:
                granted = []
            access.append({"type": kind, "name": repo, "actions": granted})
        return access

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(req.path).query)
        user = None
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if self.users.get(name) != password:
                req.send_response(401)
                req.send_header("Content-Length", "0")
                req.end_headers()
                return
            user = name
        scopes = query.get("scope", [])
        self.requests.append({"user": user, "scopes": scopes})
        access = self._access(user, scopes)
        body = json.dumps({"token": self._jwt(user or "", access), "expires_in": self.lifetime})
        data = body.encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _jwt(self, subject: str, access: list[dict]) -> str:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def _drain(req: BaseHTTPRequestHandler) -> bytes:
    return req.rfile.read(int(req.headers.get("Content-Length") or 0))


def _answer(req: BaseHTTPRequestHandler, status: int, data: bytes, headers: tuple = ()) -> None:
    req.send_response(status)
    for key, value in headers:
        req.send_header(key, value)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)
