"""Blob uploads: one streaming PUT, or PATCH chunks for registries that limit body size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from imageferry.core.errors import RegistryError
from imageferry.core.manifest import Descriptor
from imageferry.registry.auth import push
from imageferry.registry.session import RegistrySession

PIECE = 16 * 1024 * 1024
_OCTETS = "application/octet-stream"


def _start(session: RegistrySession, repository: str, what: str) -> str:
    """Open an upload (a request of its own: retried on its own)."""
    resp = session.retry(
        lambda: session.request(
            "POST", f"/v2/{repository}/blobs/uploads/", (push(repository),), ok=(202,), what=what
        ),
        f"opening an upload to {repository}",
    )
    return _next_location(session, resp.headers.get("Location"), session.url("/"), what)


def _next_location(session: RegistrySession, location: str | None, base: str, what: str) -> str:
    if not location:
        raise RegistryError(f"{what} at {session.name}: the registry gave no upload location")
    return session.resolve(base, location)


def _with_digest(location: str, desc: Descriptor) -> str:
    return location + ("&" if "?" in location else "?") + f"digest={desc.digest}"


def upload_monolithic(
    session: RegistrySession, repository: str, desc: Descriptor, chunks: Iterable[bytes]
) -> None:
    what = f"uploading blob {desc.digest.short} to {repository}"
    location = _start(session, repository, what)
    session.request(
        "PUT",
        _with_digest(location, desc),
        (push(repository),),
        headers={"Content-Type": _OCTETS, "Content-Length": str(desc.size)},
        body=chunks,
        ok=(201,),
        what=what,
    )


class _Pieces:
    """Cuts a chunk stream into pieces of exact sizes without copying more than needed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._left = b""

    def take(self, size: int) -> Iterator[bytes]:
        while size > 0:
            chunk = self._left or next(self._it, b"")
            if not chunk:
                raise RegistryError("the blob ended before its recorded size")
            part, self._left = chunk[:size], chunk[size:]
            size -= len(part)
            yield part

    def finish(self) -> None:
        """Read to the end so the verifying stream checks the digest."""
        rest = self._left + b"".join(self._it)
        if rest:
            raise RegistryError("the blob is longer than its recorded size")


def upload_chunked(
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    chunks: Iterable[bytes],
    piece: int = PIECE,
) -> None:
    what = f"uploading blob {desc.digest.short} to {repository} in chunks"
    location = _start(session, repository, what)
    pieces = _Pieces(chunks)
    offset = 0
    while offset < desc.size:
        size = min(piece, desc.size - offset)
        resp = session.request(
            "PATCH",
            location,
            (push(repository),),
            headers={
                "Content-Type": _OCTETS,
                "Content-Length": str(size),
                "Content-Range": f"{offset}-{offset + size - 1}",
            },
            body=pieces.take(size),
            ok=(202,),
            what=what,
        )
        location = _next_location(session, resp.headers.get("Location"), location, what)
        offset += size
    pieces.finish()
    session.request(
        "PUT",
        _with_digest(location, desc),
        (push(repository),),
        headers={"Content-Type": _OCTETS, "Content-Length": "0"},
        body=b"",
        ok=(201,),
        what=what,
    )
