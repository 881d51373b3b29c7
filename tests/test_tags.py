"""Tag listing: pages along Link headers on the real registry; hostile links and bodies refused."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import RegistryConfig
from imageferry.core.errors import NotFoundError, RegistryError
from imageferry.registry import Registry
from imageferry.registry.tags import list_tags
from imageferry.testing.images import make_image, make_layer, push_image


def test_tags_are_listed_across_pages(new_registry):
    server = new_registry()
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    try:
        manifest, blobs = make_image([make_layer("tags", 1024)])
        tags = [f"1.{i}" for i in range(7)]
        for tag in tags:
            push_image(client, "demo/paged", tag, manifest, blobs)
        assert sorted(list_tags(client, "demo/paged", CancelToken(), page_size=2)) == tags
        with pytest.raises(NotFoundError):
            list_tags(client, "demo/absent", CancelToken())
    finally:
        client.close()


@contextmanager
def hostile(link: str | Callable[[], str], body: bytes = b'{"tags": ["1.0"]}') -> Iterator[str]:
    """A registry answering every tag list with ``body`` and the next link ``link[()]``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            next_link = link() if callable(link) else link
            if next_link:
                self.send_header("Link", f'<{next_link}>; rel="next"')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ("http://localhost:1/v2/demo/app/tags/list?last=1.0", "refused a next-page link"),
        ("/v2/other/app/tags/list?last=1.0", "refused a next-page link"),
        ("/v2/demo/app/tags/list?n=1000", "goes in a circle"),
    ],
)
def test_hostile_next_links_are_refused(link, message):
    with hostile(link) as url:
        client = Registry(RegistryConfig(registry=url))
        try:
            with pytest.raises(RegistryError, match=message):
                list_tags(client, "demo/app", CancelToken())
        finally:
            client.close()


def test_endless_pages_and_bad_bodies_are_bounded():
    pages = itertools.count()
    with hostile(lambda: f"/v2/demo/app/tags/list?last={next(pages)}") as url:
        client = Registry(RegistryConfig(registry=url))
        try:
            with pytest.raises(RegistryError, match="more than 100 pages"):
                list_tags(client, "demo/app", CancelToken())
        finally:
            client.close()
    for body in (b"<html>", json.dumps({"tags": [1, 2]}).encode()):
        with hostile("", body) as url:
            client = Registry(RegistryConfig(registry=url))
            try:
                with pytest.raises(RegistryError, match="not a tag list"):
                    list_tags(client, "demo/app", CancelToken())
            finally:
                client.close()
