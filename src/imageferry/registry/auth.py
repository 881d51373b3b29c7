"""Registry authentication: anonymous, Basic, or Bearer tokens from the challenge.

One :class:`Authenticator` per registry learns the scheme from the first
``WWW-Authenticate`` challenge and then authenticates every request up
front. Bearer tokens are cached per set of scopes (several scopes go in one
token request, which a cross-repository mount needs) and refreshed before
they expire or when the registry answers ``invalid_token``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

import urllib3

from imageferry.core.errors import AuthError, RegistryError
from imageferry.registry.credentials import Credentials
from imageferry.registry.transport import Transport

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
Scopes = tuple[str, ...]


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ("bearer", {"realm": …, "service": …})."""
    scheme, _, rest = value.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params


def pull(repository: str) -> str:
    return f"repository:{repository}:pull"


def push(repository: str) -> str:
    return f"repository:{repository}:pull,push"


class Authenticator:
    """Thread-safe; shared by every request to one registry."""

    def __init__(
        self,
        transport: Transport,
        credentials: Callable[[], Credentials | None],
        host: str,
    ) -> None:
        """``credentials`` is asked once, and only when a registry challenges for them:
        a docker credential helper is a program to run, not worth it for anonymous pulls."""
        self._transport = transport
        self._find_credentials = credentials
        self._found: list[Credentials | None] = []
        self._found_lock = threading.Lock()
        self._host = host
        self._scheme: str | None = None
        self._params: dict[str, str] = {}
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}
        self._locks: dict[frozenset[str], threading.Lock] = {}
        self._guard = threading.Lock()

    def _credentials(self) -> Credentials | None:
        with self._found_lock:
            if not self._found:
                self._found.append(self._find_credentials())
            return self._found[0]

    def credentials_advice(self) -> str:
        """What to check after a refusal: the credentials sent, named by where they came from."""
        with self._found_lock:
            found = self._found[0] if self._found else None
        if found is None:
            return "set user and password in cfg.yaml, or run 'docker login' for this registry"
        return f"check user and password in {found.origin}"

    def header(self, scopes: Scopes) -> str | None:
        """The Authorization value for a request needing ``scopes`` (None: send none)."""
        if self._scheme == "basic":
            credentials = self._credentials()
            return credentials.basic_header() if credentials else None
        if self._scheme != "bearer":
            return None
        key = frozenset(scopes)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._tokens.get(key)
            if cached is None or cached[1] <= time.monotonic():
                cached = self._fetch_token(scopes)
                self._tokens[key] = cached
            return f"Bearer {cached[0]}"

    def challenged(self, challenge: str | None, scopes: Scopes, sent: str | None) -> bool:
        """Learn from a 401. True when a retry with a new header is worth it."""
        if not challenge:
            return False
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            already = self._scheme == "basic" and sent is not None
            self._scheme = "basic"
            return not already and self._credentials() is not None
        if scheme == "bearer":
            with self._guard:
                self._scheme = "bearer"
                self._params = params
                key = frozenset(scopes)
                cached = self._tokens.get(key)
                expired = params.get("error") == "invalid_token"
                if cached is not None and (expired or sent == f"Bearer {cached[0]}"):
                    del self._tokens[key]
            return sent is None or expired or sent.startswith("Basic")
        return False

    def _fetch_token(self, scopes: Scopes) -> tuple[str, float]:
        realm = self._params.get("realm")
        if not realm:
            raise AuthError(f"{self._host}: the registry asked for a token but named no realm")
        query: list[tuple[str, str]] = []
        if self._params.get("service"):
            query.append(("service", self._params["service"]))
        query += [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        headers = {"Accept": "application/json"}
        credentials = self._credentials()
        if credentials is not None:
            headers["Authorization"] = credentials.basic_header()
        try:
            resp = self._transport.pool_for(url).request("GET", url, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise RegistryError(
                f"{self._host}: token server {realm} unreachable ({type(exc).__name__})",
                temporary=True,
            ) from None
        if resp.status in (401, 403):
            raise AuthError(
                f"{self._host}: the token server refused "
                + ("the user and password" if credentials else "anonymous access")
                + f" (HTTP {resp.status}); {self.credentials_advice()}",
                status=resp.status,
            )
        if resp.status != 200:
            raise RegistryError(
                f"{self._host}: token server {realm} answered HTTP {resp.status}",
                status=resp.status,
                temporary=resp.status >= 500 or resp.status == 429,
            )
        try:
            data = json.loads(resp.data)
            token = data.get("token") or data["access_token"]
            lifetime = float(data.get("expires_in") or 60)
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"{self._host}: token server gave an unreadable answer") from None
        # Refresh a little early so a token does not expire between check and use.
        return token, time.monotonic() + max(1.0, lifetime * 0.8 - 5)
