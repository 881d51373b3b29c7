"""The OCI 1.1 referrers API path, against a small loopback server that answers it as a
registry with the API does (recorded exchange: an OCI index per page, ``Link`` to the
next page, ``OCI-Filters-Applied`` when it filtered). Content lands in the real registry."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from imageferry.core.manifest import OCI_INDEX, OCI_MANIFEST
from imageferry.testing.images import OCI_EMPTY, OCI_LAYER, Blob, make_image, make_layer
from support.referrers import ATTESTATION_TYPE, SBOM_TYPE
from support.verify import get_manifest

REPO = "team/app"


@dataclass
class ApiRegistry:
    """Manifests and blobs by digest, tags, and the referrers pages of one subject."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    referrers: dict[str, list[dict]] = field(default_factory=dict)  # subject -> descriptors
    next_link: str | None = None  # overrides the Link of page 1 (hostile servers)
    honour_filter: bool = True
    log: list[str] = field(default_factory=list)

    def add(self, blob: Blob) -> Blob:
        self.blobs[str(blob.digest)] = blob
        return blob


def _artifact(reg: ApiRegistry, subject: Blob, kind: str, payload: bytes) -> Blob:
    empty, layer = reg.add(Blob(b"{}", OCI_EMPTY)), reg.add(Blob(payload, kind))
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": kind,
        "config": empty.descriptor(),
        "layers": [layer.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {"org.opencontainers.image.created": "2026-11-28T00:00:00Z"},
    }
    manifest = reg.add(Blob(json.dumps(doc).encode(), OCI_MANIFEST))
    entry = {**manifest.descriptor(), "artifactType": kind, "annotations": doc["annotations"]}
    reg.referrers.setdefault(str(subject.digest), []).append(entry)
    return manifest


def _handler(reg: ApiRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:
            self.do_GET(head=True)

        def do_GET(self, head: bool = False) -> None:
            url = urlsplit(self.path)
            reg.log.append(self.path)
            parts = url.path.split("/")
            if url.path == "/v2/":
                return self._send(200, b"{}", "application/json")
            if url.path.startswith(f"/v2/{REPO}/referrers/"):
                return self._referrers(parts[-1], parse_qs(url.query))
            if url.path == f"/v2/{REPO}/tags/list":
                body = json.dumps({"name": REPO, "tags": sorted(reg.tags)}).encode()
                return self._send(200, body, "application/json")
            ref = parts[-1]
            blob = reg.blobs.get(reg.tags.get(ref, ref))
            if blob is None or parts[-2] not in ("manifests", "blobs"):
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "", head)
            headers = {"Docker-Content-Digest": str(blob.digest)}
            self._send(200, blob.data, blob.media_type, head, headers)

        def _referrers(self, subject: str, query: dict[str, list[str]]) -> None:
            entries = reg.referrers.get(subject, [])
            headers = {}
            wanted = query.get("artifactType")
            if wanted and reg.honour_filter:
                entries = [e for e in entries if e["artifactType"] in wanted]
                headers["OCI-Filters-Applied"] = "artifactType"
            page = int(query.get("page", ["0"])[0])
            if page == 0 and len(entries) > 1:
                link = reg.next_link or f"/v2/{REPO}/referrers/{subject}?page=1"
                headers["Link"] = f'<{link}>; rel="next"'
                entries = entries[:1]
            elif page == 1:
                entries = entries[1:]
            doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
            self._send(200, json.dumps(doc).encode(), OCI_INDEX, False, headers)

        def _send(
            self,
            status: int,
            body: bytes,
            kind: str,
            head: bool = False,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if kind:
                self.send_header("Content-Type", kind)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

    return Handler


@contextmanager
def api_registry(reg: ApiRegistry) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reg))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _signed() -> tuple[ApiRegistry, Blob, Blob, Blob]:
    reg = ApiRegistry()
    manifest, blobs = make_image([make_layer("api-app", 2048, OCI_LAYER)], oci=True)
    for b in blobs:
        reg.add(b)
    reg.add(manifest)
    reg.tags["1"] = str(manifest.digest)
    sbom = _artifact(reg, manifest, SBOM_TYPE, b'{"spdx": "api"}')
    att = _artifact(reg, manifest, ATTESTATION_TYPE, b'{"_type": "api"}')
    return reg, manifest, sbom, att


def _index_digests(url: str, subject: Blob) -> list[str]:
    raw = get_manifest(url, REPO, str(subject.digest).replace(":", "-"))
    return [] if raw is None else [m["digest"] for m in json.loads(raw)["manifests"]]


def test_referrers_api_pages_are_followed(new_registry, cli):
    reg, manifest, sbom, att = _signed()
    target = new_registry()
    with api_registry(reg) as url:
        result = cli("copy", f"{REPO}:1", "--from", url, "--to", target.url, "--json")
    assert result.returncode == 0, result.output
    assert result.json()["referrers"] == 2
    for artifact in (sbom, att):
        assert get_manifest(target.url, REPO, str(artifact.digest)) == artifact.data
    # the target has no API: the fallback index lists both, as the source's API did
    assert _index_digests(target.url, manifest) == [str(sbom.digest), str(att.digest)]
    asked = [p for p in reg.log if "/referrers/" in p]
    assert asked[1].endswith("?page=1")  # the Link was followed
    assert not [p for p in reg.log if "/manifests/sha256-" in p]  # no fallback tag read


def test_artifact_type_filter_applied_or_not(new_registry, cli):
    for honour in (True, False):
        reg, manifest, sbom, att = _signed()
        reg.honour_filter = honour
        target = new_registry()
        with api_registry(reg) as url:
            result = cli(
                "copy", f"{REPO}:1", "--from", url, "--to", target.url,
                "--artifact-type", SBOM_TYPE, "--json",
            )  # fmt: skip
        assert result.returncode == 0, result.output
        assert result.json()["referrers"] == 1
        assert any("artifactType=application%2Fspdx%2Bjson" in p for p in reg.log)
        assert _index_digests(target.url, manifest) == [str(sbom.digest)]
        assert get_manifest(target.url, REPO, str(att.digest)) is None


def test_next_link_elsewhere_is_refused(new_registry, cli):
    reg, manifest, sbom, att = _signed()
    reg.next_link = "http://localhost:9/v2/team/app/referrers/x?page=1"
    target = new_registry()
    with api_registry(reg) as url:
        result = cli("copy", f"{REPO}:1", "--from", url, "--to", target.url)
    assert result.returncode == 1, result.output
    assert "refused a next-page link" in result.output
    assert "Traceback" not in result.output
    assert get_manifest(target.url, REPO, "1") is None  # the image failed before it moved
