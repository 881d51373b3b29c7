"""A registry as a blob source and sink (the OCI distribution API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import urllib3

from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import DigestMismatchError, NotFoundError, RegistryError
from imageferry.core.manifest import ACCEPT, Descriptor, Manifest, parse_manifest
from imageferry.core.reference import is_digest, reference_text
from imageferry.registry.auth import pull, push
from imageferry.registry.session import RegistrySession
from imageferry.registry.upload import upload_chunked, upload_monolithic

CHUNK = 1024 * 1024
MAX_MANIFEST = 8 * 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


class Registry:
    """Thread-safe. ``writable`` registries ask for push scopes on every request,
    so one token per repository serves both the HEAD checks and the uploads."""

    def __init__(
        self,
        cfg: RegistryConfig,
        *,
        config_dir: Path | None = None,
        skiptlsverify: bool = False,
        maxconn: int = 5,
        writable: bool = False,
    ) -> None:
        self.session = RegistrySession(
            cfg, config_dir=config_dir or Path.cwd(), skiptlsverify=skiptlsverify, maxconn=maxconn
        )
        self.name = self.session.name
        self.host = self.session.host
        self.writable = writable
        self._chunked_digests: set[Digest] = set()
        self._always_chunked = cfg.chunked
        self._lock = threading.Lock()

    def _scopes(self, repository: str) -> tuple[str, ...]:
        return (push(repository) if self.writable else pull(repository),)

    # -- manifests ---------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        what = f"reading manifest {reference_text(repository, reference)}"
        resp = self.session.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            self._scopes(repository),
            headers={"Accept": ACCEPT},
            stream=True,
            what=what,
        )
        try:
            raw = resp.read(MAX_MANIFEST + 1)
        finally:
            resp.release_conn()
        if len(raw) > MAX_MANIFEST:
            raise RegistryError(f"{what} at {self.name}: manifest larger than 8 MiB")
        manifest = parse_manifest(
            raw, resp.headers.get("Content-Type", ""), f"{self.name}/{repository}"
        )
        expected = reference if is_digest(reference) else resp.headers.get("Docker-Content-Digest")
        if expected and expected != str(manifest.digest) and expected.startswith("sha256:"):
            raise DigestMismatchError(
                f"{what} at {self.name}: served bytes have digest {manifest.digest}, "
                f"not {expected}",
                expected=expected,
                actual=str(manifest.digest),
            )
        return manifest

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        try:
            resp = self.session.request(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                self._scopes(repository),
                headers={"Accept": ACCEPT},
                what=f"checking manifest {reference_text(repository, reference)}",
            )
        except NotFoundError:
            return None
        header = resp.headers.get("Docker-Content-Digest")
        if header:
            return Digest.parse(header)
        return self.get_manifest(repository, reference).digest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        resp = self.session.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            (push(repository),),
            headers={"Content-Type": manifest.media_type},
            body=manifest.raw,
            ok=(200, 201, 202),
            what=f"pushing manifest {reference_text(repository, reference)}",
        )
        served = resp.headers.get("Docker-Content-Digest")
        if served and served != str(manifest.digest):
            raise RegistryError(
                f"pushing manifest {reference_text(repository, reference)} at {self.name}: the "
                "registry stored "
                f"digest {served} instead of {manifest.digest}; it rewrote the manifest"
            )

    # -- blobs -------------------------------------------------------------

    def has_blob(self, repository: str, desc: Descriptor) -> bool:
        try:
            resp = self.session.request(
                "HEAD",
                f"/v2/{repository}/blobs/{desc.digest}",
                self._scopes(repository),
                ok=(200, 307),
                what=f"checking blob {desc.digest.short}",
            )
        except NotFoundError:
            return False
        return resp.status == 307 or resp.headers.get("Content-Length") in (None, str(desc.size))

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        """Chunks of the blob, following redirects (no Authorization to another host)."""
        what = f"reading blob {desc.digest.short} of {repository}"
        resp = self.session.request(
            "GET",
            f"/v2/{repository}/blobs/{desc.digest}",
            self._scopes(repository),
            ok=(200, *_REDIRECTS),
            stream=True,
            what=what,
        )
        hops = 0
        while resp.status in _REDIRECTS:
            hops += 1
            location = resp.headers.get("Location")
            resp.drain_conn()
            if not location or hops > 5:
                raise RegistryError(f"{what} at {self.name}: bad redirect", temporary=True)
            url = urljoin(resp.geturl() or self.session.url("/"), location)
            if urlsplit(url).netloc == urlsplit(self.session.base_url).netloc:
                resp = self.session.request(
                    "GET",
                    url,
                    self._scopes(repository),
                    ok=(200, *_REDIRECTS),
                    stream=True,
                    what=what,
                )
            else:
                resp = self.session.send("GET", url, {}, None, True, what)
                if resp.status not in (200, *_REDIRECTS):
                    raise self.session.error(resp, what)
        return self._chunks(resp, what)

    def _chunks(self, resp: urllib3.BaseHTTPResponse, what: str) -> Iterator[bytes]:
        try:
            yield from resp.stream(CHUNK, decode_content=False)
        except Exception as exc:
            raise RegistryError(
                f"{what} at {self.name}: connection broke mid-blob ({type(exc).__name__})",
                temporary=True,
            ) from None
        finally:
            resp.release_conn()

    def mount_blob(self, repository: str, from_repository: str, desc: Descriptor) -> bool:
        resp = self.session.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/?mount={desc.digest}&from={quote(from_repository)}",
            (push(repository), pull(from_repository)),
            ok=(201, 202),
            what=f"mounting blob {desc.digest.short} from {from_repository}",
        )
        if resp.status == 201:
            return True
        location = resp.headers.get("Location")
        if location:  # the registry opened an upload instead; do not leave it behind
            try:
                self.session.request(
                    "DELETE",
                    location,
                    (push(repository),),
                    ok=(200, 202, 204, 404),
                    what="cancelling upload",
                )
            except RegistryError:
                pass
        return False

    def put_blob(self, repository: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        chunked = self._always_chunked or desc.digest in self._chunked_digests
        if chunked:
            upload_chunked(self.session, repository, desc, chunks)
            return
        try:
            upload_monolithic(self.session, repository, desc, chunks)
        except RegistryError as exc:
            if exc.status in (411, 413):
                self._always_chunked = True
            elif exc.status is not None and exc.status >= 500 and desc.size > CHUNK:
                with self._lock:
                    self._chunked_digests.add(desc.digest)
            else:
                raise
            exc.temporary = True  # the engine retries, now in chunks
            raise

    def repositories(self, limit: int = 1000) -> list[str]:
        """Repository names from the catalog (empty when the registry does not allow it)."""
        try:
            resp = self.session.request(
                "GET",
                f"/v2/_catalog?n={limit}",
                ("registry:catalog:*",),
                what="listing repositories",
            )
            names = json.loads(resp.data).get("repositories") or []
        except (RegistryError, ValueError, AttributeError):
            return []
        return [str(n) for n in names][:limit]

    def close(self) -> None:
        self.session.close()
