"""Referrers of a manifest on one registry: the OCI 1.1 API, its fallback tag, cosign's tags.

Three places say what refers to a manifest ``sha256:<hex>`` in a repository:

- the referrers API, ``GET /v2/<name>/referrers/<digest>`` (an OCI index, paged along
  ``Link: <…>; rel="next"``; ``OCI-Filters-Applied: artifactType`` when the registry
  filtered for us). A registry that has the API never answers it with 404;
- else the tag-schema fallback index at tag ``sha256-<hex>`` (what ORAS, cosign v2 and
  notation write on registries without the API);
- and cosign's older tags ``sha256-<hex>.sig``, ``.att``, ``.sbom``.

One :class:`ReferrerLookup` per registry remembers whether the API answers and each
repository's tags (listed once), so an image without referrers costs at most one
request. Every read is bounded in size, pages and links (credentials stay on the
registry's own origin); a broken answer is a :class:`RegistryError`.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from imageferry.core.cancel import CancelToken
from imageferry.core.digest import Digest
from imageferry.core.errors import InputError, NotFoundError, RegistryError
from imageferry.core.lazydata import lazy_dataclass
from imageferry.core.manifest import OCI_INDEX, Manifest
from imageferry.registry.auth import pull
from imageferry.registry.client import Registry, repository_path
from imageferry.registry.exchange import Reply
from imageferry.registry.tags import list_tags

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
MAX_PAGES = 20
MAX_INDEX = 4 * 1024 * 1024
MAX_ENTRIES = 1000  # referrers of one subject
_NO_API = (400, 404, 405, 406, 501)
_NEXT_RE = r'<([^>]*)>\s*;[^,]*\brel="?next"?'  # compiled at first use (re's cache)


@lazy_dataclass(frozen=True)
class Found:
    """A referrer of a subject: a manifest by digest (API, fallback index) or a cosign tag.

    ``artifact_type`` is known up front for API and fallback entries; a cosign tag's
    comes from its manifest (see :func:`artifact_type_of`)."""

    reference: str  # a digest, or a cosign tag
    artifact_type: str = ""
    tag: str | None = None


def fallback_tag(digest: Digest) -> str:
    """The tag-schema tag of ``digest``: ``sha256-<hex>``."""
    return f"{digest.algorithm}-{digest.hex}"


def manifest_doc(manifest: Manifest) -> dict[str, Any]:
    """The manifest's JSON object (parse_manifest already refused anything else)."""
    doc = json.loads(manifest.raw)
    return doc if isinstance(doc, dict) else {}


def artifact_type_of(manifest: Manifest) -> str:
    """``artifactType``, else (as the OCI spec says) the config's media type; for a cosign
    manifest with the generic image config, its first layer's type says more."""
    doc = manifest_doc(manifest)
    given = doc.get("artifactType")
    if isinstance(given, str) and given:
        return given
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    kind = str(config.get("mediaType", "")) if config else ""
    layers = doc.get("layers") if isinstance(doc.get("layers"), list) else []
    if kind.endswith("image.config.v1+json") and layers and isinstance(layers[0], dict):
        return str(layers[0].get("mediaType", kind))
    return kind


def subject_of(manifest: Manifest) -> Digest | None:
    """The digest a manifest's ``subject`` names, or None."""
    subject = manifest_doc(manifest).get("subject")
    try:
        return Digest.parse(subject["digest"]) if isinstance(subject, dict) else None
    except (InputError, KeyError, TypeError):
        return None


def index_entry(manifest: Manifest) -> dict[str, Any]:
    """The descriptor of ``manifest`` in a referrers index: as a registry with the API
    answers it (media type, digest, size, artifactType, annotations)."""
    entry: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": str(manifest.digest),
        "size": manifest.size,
        "artifactType": artifact_type_of(manifest),
    }
    annotations = manifest_doc(manifest).get("annotations")
    if isinstance(annotations, dict) and annotations:
        entry["annotations"] = annotations
    return entry


class ReferrerLookup:
    """Finds referrers on one registry. Thread-safe; blocking."""

    def __init__(self, registry: Registry, cancel: CancelToken) -> None:
        self.registry = registry
        self.cancel = cancel
        self.api: bool | None = None  # None: not asked yet
        self._tags: dict[str, frozenset[str] | None] = {}
        self._lock = threading.Lock()
        self._probe = threading.Lock()
        self._listing: dict[str, threading.Lock] = {}  # one tag listing per repository

    def find(
        self, repository: str, subject: Digest, artifact_types: tuple[str, ...] = ()
    ) -> list[Found]:
        """Every referrer of ``subject`` (one of ``artifact_types`` when given; cosign tags
        are filtered by the caller, who reads their manifests)."""
        found = None
        if self.api is None:
            with self._probe:  # the first request tells whether there is an API: ask it once
                if self.api is not False:
                    found = self.from_api(repository, subject, artifact_types)
        elif self.api:
            found = self.from_api(repository, subject, artifact_types)
        tags = self.tags(repository)
        if found is None:
            found = self._from_fallback(repository, subject, tags)
        wanted = [  # an entry without a type is judged by its manifest, by the caller
            f
            for f in found
            if not artifact_types or not f.artifact_type or f.artifact_type in artifact_types
        ]
        for suffix in COSIGN_SUFFIXES:
            tag = fallback_tag(subject) + suffix
            if tags is None or tag in tags:
                if tags is not None or self.registry.manifest_digest(repository, tag):
                    wanted.append(Found(tag, tag=tag))
        return wanted

    def tags(self, repository: str) -> frozenset[str] | None:
        """The repository's tags (listed once); None when the registry does not list them."""
        with self._lock:
            listing = self._listing.setdefault(repository, threading.Lock())
        with listing:
            return self._listed(repository)

    def _listed(self, repository: str) -> frozenset[str] | None:
        with self._lock:
            if repository in self._tags:
                return self._tags[repository]
        try:
            tags: frozenset[str] | None = frozenset(
                list_tags(self.registry, repository, self.cancel)
            )
        except NotFoundError:
            tags = frozenset()
        except RegistryError:
            tags = None  # each tag is then asked for by name
        with self._lock:
            self._tags[repository] = tags
        return tags

    def has_api(self, repository: str, subject: Digest) -> bool:
        """Whether the registry answers the referrers API (asked once)."""
        with self._probe:
            if self.api is None:
                self.from_api(repository, subject, ())
        return bool(self.api)

    def from_api(
        self, repository: str, subject: Digest, artifact_types: tuple[str, ...]
    ) -> list[Found] | None:
        """The API's answer, every page; None when the registry has no referrers API."""
        path = f"{repository_path(repository)}/referrers/{quote(str(subject), safe=':')}"
        if len(artifact_types) == 1:
            path += "?artifactType=" + quote(artifact_types[0], safe="")
        what = f"listing referrers of {subject.short} in {repository}"
        found: list[Found] = []
        seen = {path}
        for _ in range(MAX_PAGES):
            reply = self._page(path, repository, what, first=not found)
            if reply is None:
                return None
            found += _entries(reply.data, f"{what} at {self.registry.name}")
            if len(found) > MAX_ENTRIES:
                raise RegistryError(f"{what} at {self.registry.name}: more than {MAX_ENTRIES}")
            link = re.search(_NEXT_RE, reply.headers.get("Link", "") or "", re.IGNORECASE)
            if link is None:
                return found
            path = self._next(link.group(1), path, what)
            if path in seen:
                raise RegistryError(
                    f"{what} at {self.registry.name}: the next link goes in a circle"
                )
            seen.add(path)
        raise RegistryError(f"{what} at {self.registry.name}: more than {MAX_PAGES} pages")

    def _page(self, path: str, repository: str, what: str, first: bool) -> Reply | None:
        """One page of the API; None when the registry shows it has no API (a 404 — which
        a registry with the API never answers — or 400/405/406/501 to the first request)."""
        self.cancel.check()
        try:
            reply = self.registry.session.request(
                "GET",
                path,
                (pull(repository),),
                headers={"Accept": OCI_INDEX},
                limit=MAX_INDEX,
                what=what,
            )
        except RegistryError as exc:
            if not first or self.api or exc.status not in _NO_API:
                raise
            self.api = False
            return None
        self.api = True
        return reply

    def _next(self, link: str, path: str, what: str) -> str:
        base = self.registry.session.base_url
        url = urljoin(base + path, link)
        parts, own = urlsplit(url), urlsplit(base)
        if (parts.scheme, parts.netloc) != (own.scheme, own.netloc) or parts.path != urlsplit(
            path
        ).path:
            raise RegistryError(
                f"{what} at {self.registry.name}: refused a next-page link that leaves "
                f"{own.scheme}://{own.netloc}{urlsplit(path).path}"
            )
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _from_fallback(
        self, repository: str, subject: Digest, tags: frozenset[str] | None
    ) -> list[Found]:
        index = self.fallback_index(repository, subject, tags)
        if index is None:
            return []
        where = f"referrers index {fallback_tag(subject)} of {repository} at {self.registry.name}"
        return _entries(index.raw, where)

    def fallback_index(
        self, repository: str, subject: Digest, tags: frozenset[str] | None = None
    ) -> Manifest | None:
        """The fallback index of ``subject`` (one GET), or None when there is none."""
        tag = fallback_tag(subject)
        if tags is not None and tag not in tags:
            return None
        try:
            index = self.registry.get_manifest(repository, tag)
        except NotFoundError:
            return None
        if not index.is_index:
            raise RegistryError(
                f"tag {tag} of {repository} at {self.registry.name} should hold a referrers "
                f"index but holds a {index.media_type}; remove or rename that tag"
            )
        return index


def _entries(data: bytes, where: str) -> list[Found]:
    """The descriptors of a referrers index (the API's answer or the fallback tag's)."""
    try:
        doc = json.loads(data)
        entries = doc.get("manifests") or []
        if not isinstance(entries, list):
            raise ValueError("'manifests' is not a list")
        found = []
        for entry in entries[: MAX_ENTRIES + 1]:
            digest = Digest.parse(entry["digest"])
            kind = entry.get("artifactType") or ""
            found.append(Found(str(digest), str(kind)))
    except (ValueError, AttributeError, KeyError, TypeError, InputError, RecursionError) as exc:
        raise RegistryError(f"{where}: not a referrers index ({str(exc)[:200]})") from None
    if len(found) > MAX_ENTRIES:
        raise RegistryError(f"{where}: more than {MAX_ENTRIES} referrers")
    return found
