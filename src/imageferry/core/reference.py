"""Image references: parse and print ``host[:port]/path[:tag][@digest]``.

The grammar is the one of the distribution project: lower-case path
components separated by ``/``, components joined by ``.``, ``_``, ``__`` or
dashes; tags of word characters, dots and dashes (at most 128); digests
``sha256:<hex>``. The first component is a registry host when it contains a
``.`` or ``:`` or is ``localhost``.
"""

from __future__ import annotations

import re
from dataclasses import replace

from imageferry.core.digest import Digest
from imageferry.core.errors import InputError
from imageferry.core.lazydata import quick_dataclass

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"


def is_digest(reference: str) -> bool:
    """Whether a manifest reference (what follows ``/manifests/``) is a digest, not a tag."""
    return ":" in reference  # tags cannot hold a colon; digests always do


def reference_text(repository: str, reference: str) -> str:
    """``repo:tag`` or ``repo@sha256:…`` for messages."""
    return f"{repository}{'@' if is_digest(reference) else ':'}{reference}"


def is_docker_hub(host: str) -> bool:
    return host in ("docker.io", "index.docker.io", "registry-1.docker.io")


def check_host(host: str) -> str:
    if not _HOST_RE.match(host):
        raise InputError(f"'{host}' is not a valid registry host (expected name[:port])")
    return host


def check_repository(path: str) -> str:
    if not path:
        raise InputError("the repository name is empty")
    if len(path) > 255:
        raise InputError(f"repository name '{path}' is longer than 255 characters")
    for part in path.split("/"):
        if _COMPONENT_RE.match(part):
            continue
        if part.lower() != part and _COMPONENT_RE.match(part.lower()):
            raise InputError(f"repository name '{path}' must be lower case")
        raise InputError(
            f"repository name '{path}' is invalid at '{part}': use lower-case letters, "
            "digits and single . _ - between them"
        )
    return path


def check_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise InputError(
            f"tag '{tag}' is invalid: use letters, digits, _ . - (at most 128, not starting "
            "with . or -)"
        )
    return tag


@quick_dataclass(frozen=True)
class Reference:
    """A fully resolved image reference. ``host`` is empty only before resolution."""

    host: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse a reference; the host part is optional (then ``host`` is '')."""
        text = text.strip()
        if not text:
            raise InputError("empty image reference")
        if any(c.isspace() for c in text):
            raise InputError(f"'{text}' contains white space")
        name, digest = text, None
        if "@" in text:
            name, _, digest_text = text.partition("@")
            digest = Digest.parse(digest_text)
        tag = None
        last_slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > last_slash:
            name, tag = name[:colon], check_tag(name[colon + 1 :])
        host = ""
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
            host, name = check_host(first), rest
        return cls(host, check_repository(name), tag, digest)

    def with_host(self, host: str) -> Reference:
        repo = self.repository
        if is_docker_hub(host) and "/" not in repo:
            repo = f"library/{repo}"
        return replace(self, host=host, repository=repo)

    @property
    def tag_or_digest(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}" if self.host else self.repository

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        if not self.tag and not self.digest:
            out += f":{DEFAULT_TAG}"
        return out
