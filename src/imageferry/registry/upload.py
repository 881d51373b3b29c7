"""Blob uploads: one streaming PUT, or PATCH chunks for registries that limit body size."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from imageferry.core.errors import DigestMismatchError, NotFoundError, RegistryError
from imageferry.core.manifest import Descriptor
from imageferry.registry.auth import push
from imageferry.registry.exchange import Reply
from imageferry.registry.session import RegistrySession
from imageferry.registry.uploadbook import Held, UploadBook

PIECE = 16 * 1024 * 1024
RESUMABLE_PIECE = 8 * 1024 * 1024  # above ECR's 5 MiB minimum for a chunk
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
        location = _patch(session, repository, location, offset, size, pieces.take(size), what)
        offset += size
    pieces.finish()
    _close_upload(session, repository, location, desc, what)


def upload_resumable(
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    open_from: Callable[[int], Iterable[bytes]],
    book: UploadBook,
    piece: int = RESUMABLE_PIECE,
) -> None:
    """Upload in PATCH pieces, each recorded in ``book`` once the target acknowledged it,
    continuing an upload that an earlier run left there (``open_from(n)``: the blob from
    byte ``n`` on). Each piece is read whole before it is sent, so a stop while reading
    never cuts a PATCH. A digest the target refuses at commit drops the session."""
    what = f"uploading blob {desc.digest.short} to {repository}"
    key = book.key(session.base_url, repository, str(desc.digest))
    held = held_upload(session, repository, book.get(key), desc, what)
    if held is None:
        book.drop(key)
        held = Held(_start(session, repository, what), 0)
        book.put(key, held)
    chunks = open_from(held.offset)
    try:
        location = _send_pieces(session, repository, desc, chunks, held, book, key, piece)
        _commit(session, repository, desc, location, book, key, what)
    except DigestMismatchError:
        book.drop(key)  # wrong bytes from the source: none of this session is kept
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    book.drop(key)


def held_upload(
    session: RegistrySession, repository: str, held: Held | None, desc: Descriptor, what: str
) -> Held | None:
    """What the target still holds of a recorded upload (None: nothing usable)."""
    if held is None or not session.is_own(held.location):
        return None
    try:
        resp = session.request(
            "GET", held.location, (push(repository),), ok=(204,), what=f"{what} (resuming)"
        )
    except NotFoundError:
        return None  # expired, purged or refused: start anew
    except RegistryError as exc:
        if exc.temporary:
            raise
        return None
    first, _, last = (resp.headers.get("Range") or "").partition("-")
    if first.strip() != "0" or not last.strip().isdigit():
        return None
    end = int(last)
    offset = 0 if end == 0 and held.offset == 0 else end + 1
    if offset > desc.size:
        return None
    location = _next_location(session, resp.headers.get("Location"), held.location, what)
    return Held(location, offset)


def _send_pieces(
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    chunks: Iterable[bytes],
    held: Held,
    book: UploadBook,
    key: str,
    piece: int,
) -> str:
    what = f"uploading blob {desc.digest.short} to {repository} in pieces"
    pieces = _Pieces(chunks)
    offset, location = held.offset, held.location
    while offset < desc.size:
        size = min(piece, desc.size - offset)
        data = b"".join(pieces.take(size))  # read whole: a source fault never cuts a PATCH
        # sent as a stream: bounded by stalls, not by the exchange's timeout
        location = _patch(session, repository, location, offset, size, [data], what)
        offset += size
        book.put(key, Held(location, offset))
    pieces.finish()
    return location


def _close_upload(
    session: RegistrySession, repository: str, location: str, desc: Descriptor, what: str
) -> Reply:
    """The empty PUT that ends an upload session: the registry checks the digest here."""
    return session.request(
        "PUT",
        _with_digest(location, desc),
        (push(repository),),
        headers={"Content-Type": _OCTETS, "Content-Length": "0"},
        body=b"",
        ok=(201,),
        what=what,
    )


def _patch(
    session: RegistrySession,
    repository: str,
    location: str,
    offset: int,
    size: int,
    body: Iterable[bytes],
    what: str,
) -> str:
    """Send bytes ``offset``..``offset + size - 1`` of the blob; returns the next location."""
    resp = session.request(
        "PATCH",
        location,
        (push(repository),),
        headers={
            "Content-Type": _OCTETS,
            "Content-Length": str(size),
            "Content-Range": f"{offset}-{offset + size - 1}",
        },
        body=body,
        ok=(202,),
        what=what,
    )
    return _next_location(session, resp.headers.get("Location"), location, what)


def _commit(
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    location: str,
    book: UploadBook,
    key: str,
    what: str,
) -> None:
    try:
        resp = _close_upload(session, repository, location, desc, what)
    except RegistryError as exc:
        if exc.status in (400, 404, 416):
            book.drop(key)  # wrong bytes in the session, or the session is gone
            exc.temporary = True  # the engine tries once more, from byte 0
        raise
    served = resp.headers.get("Docker-Content-Digest")
    if served and served != str(desc.digest):
        book.drop(key)
        raise RegistryError(
            f"{what} at {session.name}: the registry stored digest {served} "
            f"instead of {desc.digest}",
            temporary=True,
        )
