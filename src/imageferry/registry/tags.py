"""Tag listing: ``GET /v2/<name>/tags/list``, page by page along ``Link: <…>; rel="next"``.

Bounded in every direction a hostile registry could push: pages, tags, body
size per page. A next link is followed only when it stays on the registry's
own scheme and host (credentials go nowhere else) and lists the same repository.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin, urlsplit

from imageferry.core.cancel import CancelToken
from imageferry.core.errors import RegistryError
from imageferry.registry.auth import pull
from imageferry.registry.client import Registry

PAGE_SIZE = 1000
MAX_PAGES = 100
MAX_TAGS = 100_000
MAX_BODY = 8 * 1024 * 1024
_NEXT_RE = re.compile(r'<([^>]*)>\s*;[^,]*\brel="?next"?', re.IGNORECASE)


def list_tags(
    registry: Registry, repository: str, cancel: CancelToken, page_size: int = PAGE_SIZE
) -> list[str]:
    """Every tag of ``repository``, in the registry's order (blocking).

    Raises NotFoundError when the repository does not exist, RegistryError for
    a bad answer or a listing beyond the bounds, Cancelled when stopped.
    """
    what = f"listing tags of {repository}"
    path = f"/v2/{repository}/tags/list?n={page_size}"
    tags: list[str] = []
    seen_pages: set[str] = set()
    for _ in range(MAX_PAGES):
        cancel.check()
        seen_pages.add(path)
        page, link = _page(registry, repository, path, what)
        tags.extend(page)
        if len(tags) > MAX_TAGS:
            raise RegistryError(f"{what} at {registry.name}: more than {MAX_TAGS} tags")
        if link is None:
            return _unique(tags)
        path = _next_path(registry, repository, link, what)
        if path in seen_pages:
            raise RegistryError(f"{what} at {registry.name}: the next page link goes in a circle")
    raise RegistryError(f"{what} at {registry.name}: more than {MAX_PAGES} pages")


def _page(
    registry: Registry, repository: str, path: str, what: str
) -> tuple[list[str], str | None]:
    resp = registry.session.request("GET", path, (pull(repository),), limit=MAX_BODY, what=what)
    raw = resp.data  # the session refuses an answer over MAX_BODY
    try:
        doc = json.loads(raw)
        tags = doc.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError("tags is not a list of names")
    except (ValueError, AttributeError, RecursionError) as exc:
        raise RegistryError(f"{what} at {registry.name}: not a tag list ({exc})") from None
    match = _NEXT_RE.search(resp.headers.get("Link", "") or "")
    return tags, (match.group(1) if match else None)


def _next_path(registry: Registry, repository: str, link: str, what: str) -> str:
    """The next page as a path on this registry; RegistryError for a link elsewhere."""
    base = registry.session.base_url
    url = urljoin(base + "/", link)
    parts, own = urlsplit(url), urlsplit(base)
    if (parts.scheme, parts.netloc) != (own.scheme, own.netloc) or parts.path != (
        f"/v2/{repository}/tags/list"
    ):
        raise RegistryError(
            f"{what} at {registry.name}: refused a next-page link that leaves "
            f"{own.scheme}://{own.netloc}/v2/{repository}/tags/list"
        )
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))
