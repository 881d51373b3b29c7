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
from urllib.parse import urlencode, urlsplit

from imageferry.core.errors import AuthError, RegistryError
from imageferry.registry.credentials import Credentials
from imageferry.registry.deadline import Deadline
from imageferry.registry.exchange import (
    read_body,
    release,
    retry_after,
    timed_out,
)
from imageferry.registry.pool import NETWORK_ERRORS, Headers
from imageferry.registry.transport import Transport, redact, without_userinfo

MAX_TOKEN_ANSWER = 1024 * 1024

_TCHAR = r"[!#$%&'*+.^_`|~0-9A-Za-z-]"
# a scheme, or a parameter (name=token or name="quoted"), after separating commas/spaces
# (patterns are compiled at their first use, by re's cache: a registry without auth never does)
_ITEM_RE = rf'[\s,]*({_TCHAR}+)(\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TCHAR}*=*)))?'
_ESCAPE_RE = r"\\(.)"
_TOKEN_RE = r"[\x21-\x7e]{1,65536}"  # visible ASCII: nothing to inject
Scopes = tuple[str, ...]


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]]:
    """Every challenge in one ``WWW-Authenticate`` value, in order (RFC 9110 11.6.1):
    ``Basic realm="r", Bearer realm="…",service="…"`` → [("basic", {…}), ("bearer", {…})]."""
    found: list[tuple[str, dict[str, str]]] = []
    for m in re.finditer(_ITEM_RE, value):
        name, assigned, quoted, plain = m.groups()
        if assigned is None:  # a bare token: the next challenge's scheme
            found.append((name.lower(), {}))
        elif found:
            text = re.sub(_ESCAPE_RE, r"\1", quoted) if quoted is not None else plain
            found[-1][1].setdefault(name.lower(), text)
    return found


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """The challenge we answer: Bearer when offered (tokens carry scopes), else the first."""
    challenges = parse_challenges(value)
    for scheme, params in challenges:
        if scheme == "bearer":
            return scheme, params
    return challenges[0] if challenges else ("", {})


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
        scheme: str = "https",
    ) -> None:
        """``credentials`` is asked once, and only when a registry challenges for them:
        a docker credential helper is a program to run, not worth it for anonymous pulls."""
        self._transport = transport
        self._find_credentials = credentials
        self._found: list[Credentials | None] = []
        self._found_lock = threading.Lock()
        self._refresh = ""  # a refresh token the token server handed back (rotated)
        self._host = host
        self._registry_scheme = scheme
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
        if found.identity_token:
            return f"the identity token in {found.origin} may have expired: log in again"
        return f"check user and password in {found.origin}"

    def header(self, scopes: Scopes) -> str | None:
        """The Authorization value for a request needing ``scopes`` (None: send none)."""
        if self._scheme == "basic":  # an identity token alone is no use here
            credentials = self._credentials()
            return credentials.basic_header() if credentials and credentials.user else None
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

    def _token_url(self, scopes: Scopes) -> str:
        realm = without_userinfo(self._params.get("realm") or "")
        if not realm:
            raise AuthError(f"{self._host}: the registry asked for a token but named no realm")
        if urlsplit(realm).scheme not in ("http", "https"):
            raise AuthError(f"{self._host}: the registry named an unusable token realm")
        query: list[tuple[str, str]] = []
        if self._params.get("service"):
            query.append(("service", self._params["service"]))
        query += [("scope", s) for s in scopes]
        return realm + ("&" if "?" in realm else "?") + urlencode(query)

    def _fetch_token(self, scopes: Scopes) -> tuple[str, float]:
        url = self._token_url(scopes)
        realm = redact(url.partition("?")[0])
        headers = {"Accept": "application/json"}
        credentials = self._credentials()
        body: bytes | None = None
        if credentials is not None:
            if urlsplit(url).scheme != "https" and self._registry_scheme == "https":
                raise AuthError(
                    f"{self._host}: the registry sends us to the plain-http token server "
                    f"{realm}; imageferry does not send the password of an https registry "
                    "in clear text. Ask the registry's admin for an https token realm"
                )
            if credentials.identity_token:
                url, body = url.partition("?")[0], self._refresh_form(credentials, scopes)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                headers["Authorization"] = credentials.basic_header()
        status, data, answer = self._call(url, headers, body, realm)
        if status in (401, 403):
            refused = "the identity token" if body else "the user and password"
            raise AuthError(
                f"{self._host}: the token server refused "
                + (refused if credentials else "anonymous access")
                + f" (HTTP {status}); {self.credentials_advice()}",
                status=status,
            )
        if status != 200:
            raise RegistryError(
                f"{self._host}: token server {realm} answered HTTP {status}",
                status=status,
                temporary=status >= 500 or status in (408, 429),
                retry_after=retry_after(answer.get("Retry-After")),
            )
        return self._read_token(data)

    def _refresh_form(self, credentials: Credentials, scopes: Scopes) -> bytes:
        """The OAuth2 refresh-token grant docker sends for an identity token."""
        with self._found_lock:
            token = self._refresh or credentials.identity_token
        form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "imageferry"),
            ("scope", " ".join(scopes)),
        ]
        if self._params.get("service"):
            form.append(("service", self._params["service"]))
        return urlencode(form).encode()

    def _call(
        self, url: str, headers: dict[str, str], body: bytes | None, realm: str
    ) -> tuple[int, bytes, Headers]:
        """GET (or, with a form, POST) the token answer: at most 1 MiB, within the
        transport's timeout."""
        what = f"getting a token from {realm}"
        deadline = Deadline(self._transport.timeout)
        try:
            with deadline.bound():
                method = "GET" if body is None else "POST"
                resp = self._transport.request(method, url, headers, body)
                deadline.attach(resp.connection)  # the socket the body comes on
                data, complete = read_body(resp, MAX_TOKEN_ANSWER)
                if deadline.expired:  # an answer cut short may still parse
                    raise ConnectionAbortedError("cut by the deadline")
        except NETWORK_ERRORS as exc:
            deadline.close()
            if deadline.expired:
                raise timed_out(what, self._host, deadline) from None
            raise RegistryError(
                f"{self._host}: token server {realm} unreachable ({type(exc).__name__})",
                temporary=True,
            ) from None
        release(resp, deadline, complete)
        if not complete:
            raise RegistryError(f"{self._host}: the token server's answer is larger than 1 MiB")
        return resp.status, data, resp.headers

    def _read_token(self, data: bytes) -> tuple[str, float]:
        try:
            doc = json.loads(data)
            token = doc.get("token") or doc["access_token"]
            lifetime = float(doc.get("expires_in") or 60)
            if not isinstance(token, str) or not re.fullmatch(_TOKEN_RE, token):
                raise TypeError("token")
            rotated = doc.get("refresh_token")
            if isinstance(rotated, str) and rotated:  # the server may rotate refresh tokens
                with self._found_lock:
                    self._refresh = rotated
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise RegistryError(f"{self._host}: token server gave an unreadable answer") from None
        # Refresh a little early so a token does not expire between check and use.
        return token, time.monotonic() + max(1.0, min(lifetime, 86400.0) * 0.8 - 5)
