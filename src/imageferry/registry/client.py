"""A registry as a blob source and sink (the OCI distribution API)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import (
    DigestMismatchError,
    InputError,
    NotFoundError,
    RegistryError,
    UnsupportedManifestError,
)
from imageferry.core.manifest import ACCEPT, Descriptor, Manifest, parse_manifest
from imageferry.core.reference import check_repository, check_tag, is_digest, reference_text
from imageferry.registry.auth import pull, push
from imageferry.registry.exchange import CHUNK
from imageferry.registry.pieces import Pace
from imageferry.registry.session import RegistrySession, Retry
from imageferry.registry.transport import DEFAULT_TIMEOUT
from imageferry.registry.upload import (
    RESUMABLE_PIECE,
    OpenUploads,
    probe,
    upload_chunked,
    upload_monolithic,
    upload_resumable,
)
from imageferry.registry.uploadbook import UploadBook

MAX_MANIFEST = 8 * 1024 * 1024


def repository_path(repository: str) -> str:
    """``/v2/<repository>``, refusing a name that could leave its place in the URL."""
    return "/v2/" + quote(check_repository(repository), safe="/")


def manifest_path(repository: str, reference: str) -> str:
    """``/v2/<repository>/manifests/<tag or digest>``, built from validated parts only."""
    ref = str(Digest.parse(reference)) if is_digest(reference) else check_tag(reference)
    return f"{repository_path(repository)}/manifests/{quote(ref, safe=':')}"


def blob_path(repository: str, digest: Digest) -> str:
    return f"{repository_path(repository)}/blobs/{quote(str(digest), safe=':')}"


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
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """``timeout``: seconds a manifest, token or HEAD exchange may take in all, and a
        connect or a blob stream may stall."""
        self.session = RegistrySession(
            cfg,
            config_dir=config_dir or Path.cwd(),
            skiptlsverify=skiptlsverify,
            maxconn=maxconn,
            timeout=timeout,
        )
        self.name = self.session.name
        self.host = self.session.host
        self.writable = writable
        self._chunked_digests: set[Digest] = set()
        self._always_chunked = cfg.chunked
        self._lock = threading.Lock()
        self.uploads: UploadBook | None = None  # set: uploads survive a stopped run
        self._no_patch = False
        self.pace = Pace()  # how fast the last upload piece moved; how long one may be
        self._opened = OpenUploads()  # uploads a probe_blob opened
        self._no_probe = False

    def set_retry(self, retry: Retry) -> None:
        """How a request inside one operation is retried on its own (the engine's policy)."""
        self.session.retry = retry

    def _scopes(self, repository: str) -> tuple[str, ...]:
        return (push(repository) if self.writable else pull(repository),)

    # -- manifests ---------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        what = f"reading manifest {reference_text(repository, reference)}"
        reply = self.session.request(
            "GET",
            manifest_path(repository, reference),
            self._scopes(repository),
            headers={"Accept": ACCEPT},
            limit=MAX_MANIFEST,
            what=what,
        )
        where = f"{self.name}/{repository}"
        manifest = parse_manifest(reply.data, reply.headers.get("Content-Type", ""), where)
        if is_digest(reference):
            _check_digest(manifest.raw, Digest.parse(reference), f"{what} at {self.name}")
        else:
            served = _optional_digest(reply.headers.get("Docker-Content-Digest"))
            if served is not None:
                _check_digest(manifest.raw, served, f"{what} at {self.name}")
        return manifest

    def manifest_digest(self, repository: str, reference: str) -> Digest | None:
        try:
            reply = self.session.request(
                "HEAD",
                manifest_path(repository, reference),
                self._scopes(repository),
                headers={"Accept": ACCEPT},
                what=f"checking manifest {reference_text(repository, reference)}",
            )
        except NotFoundError:
            return None
        served = _optional_digest(reply.headers.get("Docker-Content-Digest"))
        if served is not None and served.algorithm == "sha256":
            return served
        return self.get_manifest(repository, reference).digest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> None:
        resp = self.session.request(
            "PUT",
            manifest_path(repository, reference),
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
                blob_path(repository, desc.digest),
                self._scopes(repository),
                ok=(200, 307),
                what=f"checking blob {desc.digest.short}",
            )
        except NotFoundError:
            return False
        return resp.status == 307 or resp.headers.get("Content-Length") in (None, str(desc.size))

    def open_blob(self, repository: str, desc: Descriptor) -> Iterator[bytes]:
        """Chunks of the blob, following redirects (no Authorization outside the registry).

        Close the iterator when done with it, also when it was not read to the end."""
        return self.session.open(
            "GET",
            blob_path(repository, desc.digest),
            self._scopes(repository),
            headers={},
            what=f"reading blob {desc.digest.short} of {repository}",
        )

    def open_blob_from(
        self, repository: str, desc: Descriptor, offset: int
    ) -> tuple[Iterator[bytes], int]:
        """The blob from byte ``offset`` on (a Range GET), and the offset its chunks start
        at: 0 when the registry ignored the range and sends the whole blob."""
        stream = self.session.open(
            "GET",
            blob_path(repository, desc.digest),
            self._scopes(repository),
            headers={"Range": f"bytes={offset}-"},
            what=f"reading blob {desc.digest.short} of {repository} from byte {offset}",
            ok=(200, 206),
        )
        if stream.status == 200:
            return stream, 0
        served = stream.headers.get("Content-Range") or ""
        if not served.startswith(f"bytes {offset}-"):
            stream.close()
            raise RegistryError(
                f"reading blob {desc.digest.short} of {repository} at {self.name}: asked for "
                f"bytes from {offset} on, got the range {served[:80]!r}",
                temporary=True,
            )
        return stream, offset

    def mount_blob(self, repository: str, from_repository: str, desc: Descriptor) -> bool:
        resp = self.session.request(
            "POST",
            f"{repository_path(repository)}/blobs/uploads/?mount={desc.digest}"
            f"&from={quote(check_repository(from_repository), safe='')}",
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
                    self.session.resolve("/", location),
                    (push(repository),),
                    ok=(200, 202, 204, 404),
                    what="cancelling upload",
                )
            except RegistryError:
                pass
        return False

    def probe_blob(self, repository: str, desc: Descriptor) -> bool:
        """Whether ``repository`` has the blob; when not, the upload :meth:`put_blob` will
        use is open already (one request instead of a HEAD and a POST; see upload.py)."""
        if self._no_probe:
            return self.has_blob(repository, desc)
        try:
            return probe(self.session, repository, desc, self._opened)
        except RegistryError as exc:
            if exc.temporary or exc.status in (401, 403):
                raise
            self._no_probe = True  # the registry refuses such a POST: HEADs from now on
        return self.has_blob(repository, desc)

    def put_blob(self, repository: str, desc: Descriptor, chunks: Iterable[bytes]) -> None:
        chunked = self._always_chunked or desc.digest in self._chunked_digests
        location = self._opened.take(repository, desc)
        if chunked:
            upload_chunked(self.session, repository, desc, chunks, location=location)
            return
        try:
            upload_monolithic(self.session, repository, desc, chunks, location)
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

    def put_blob_resumable(
        self,
        repository: str,
        desc: Descriptor,
        open_from: Callable[[int], Iterable[bytes]],
    ) -> None:
        """Upload in recorded pieces, continuing what an earlier run left on the target;
        ``open_from(n)`` gives the blob from byte ``n`` on. Needs :attr:`uploads`."""
        if self.uploads is None or self._no_patch or desc.size <= RESUMABLE_PIECE:
            chunks = open_from(0)
            try:
                self.put_blob(repository, desc, chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            return
        try:
            resumed = upload_resumable(
                self.session, repository, desc, open_from, self.uploads, pace=self.pace
            )
        except RegistryError as exc:
            if exc.status in (405, 501):  # no PATCH here: whole uploads from now on
                self._no_patch = True
                exc.temporary = True
            elif exc.status == 413 and self.pace.most > RESUMABLE_PIECE:  # a body limit
                self.pace.most = RESUMABLE_PIECE
                exc.temporary = True
            raise
        # bytes held from an earlier run were checked by the target alone: ask it what it
        # serves (a fresh upload was verified whole before its last byte left)
        if resumed and not self.has_blob(repository, desc):
            raise RegistryError(
                f"uploading blob {desc.digest.short} to {repository} at {self.name}: the "
                "registry accepted the upload but does not serve the blob",
                temporary=True,
            )

    def repositories(self, limit: int = 1000) -> list[str]:
        """Repository names from the catalog (empty when the registry does not allow it)."""
        try:
            reply = self.session.request(
                "GET",
                f"/v2/_catalog?n={limit}",
                ("registry:catalog:*",),
                what="listing repositories",
            )
            names = json.loads(reply.data).get("repositories") or []
        except (RegistryError, ValueError, AttributeError, RecursionError):
            return []
        return [str(n) for n in names][:limit]

    def close(self) -> None:
        self.session.close()


def _optional_digest(text: str | None) -> Digest | None:
    """A digest header worth checking against (None when absent or unreadable)."""
    try:
        return Digest.parse(text) if text else None
    except InputError:
        return None


def _check_digest(raw: bytes, expected: Digest, where: str) -> None:
    """The served bytes must have ``expected``'s digest, in ``expected``'s algorithm."""
    try:
        actual = Digest.of_bytes(raw, expected.algorithm)
    except ValueError:
        raise UnsupportedManifestError(
            f"{where}: digest algorithm {expected.algorithm} is not supported"
        ) from None
    if actual != expected:
        raise DigestMismatchError(
            f"{where}: served bytes have digest {actual}, not {expected}",
            expected=str(expected),
            actual=str(actual),
        )
