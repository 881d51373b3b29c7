"""Blob uploads: one streaming PUT, PATCH chunks for registries that limit body size, or
recorded PATCH pieces that a later run continues (see pieces.py for their size); and the
probe that asks whether a repository has a small blob while opening its upload."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from urllib.parse import quote

from imageferry.core.errors import DigestMismatchError, NotFoundError, RegistryError
from imageferry.core.manifest import Descriptor
from imageferry.registry.auth import push
from imageferry.registry.exchange import Reply
from imageferry.registry.pieces import Pace, Pieces, next_piece
from imageferry.registry.session import RegistrySession
from imageferry.registry.uploadbook import Held, UploadBook

PIECE = 16 * 1024 * 1024
RESUMABLE_PIECE = 8 * 1024 * 1024  # above ECR's 5 MiB minimum for a chunk
_OCTETS = "application/octet-stream"
# while entered, a stop waits for the piece in flight to end
Hold = Callable[[], contextlib.AbstractContextManager[object]]


class OpenUploads:
    """Upload sessions that :func:`probe` opened: each is taken once, by the next upload
    of that blob to that repository. Thread-safe."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def put(self, repository: str, desc: Descriptor, location: str) -> None:
        with self._lock:
            self._held[(repository, str(desc.digest))] = location

    def take(self, repository: str, desc: Descriptor) -> str | None:
        with self._lock:
            return self._held.pop((repository, str(desc.digest)), None)


def probe(session: RegistrySession, repository: str, desc: Descriptor, opened: OpenUploads) -> bool:
    """Whether ``repository`` has the blob, in one request that also opens its upload: a
    mount from the repository itself (``POST ?mount=&from=``) answers 201 when the blob
    is there; else 202 with an upload location, kept in ``opened`` for the upload (a HEAD
    and a POST in one). A registry that does not mount opens an upload either way: the
    blob is then uploaded again, never wrong."""
    what = f"checking blob {desc.digest.short}"
    resp = session.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/?mount={desc.digest}&from={quote(repository, safe='')}",
        (push(repository),),
        ok=(201, 202),
        what=what,
    )
    if resp.status == 201:
        return True
    location = resp.headers.get("Location")
    if location:
        opened.put(repository, desc, _next_location(session, location, session.url("/"), what))
    return False


def _start(
    session: RegistrySession, repository: str, what: str, location: str | None = None
) -> str:
    """Open an upload (a request of its own: retried on its own); ``location``: one that
    is open already (a probe's)."""
    if location is not None:
        return location
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
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    chunks: Iterable[bytes],
    location: str | None = None,
) -> None:
    """POST (unless ``location`` is an open upload), then one streamed PUT."""
    what = f"uploading blob {desc.digest.short} to {repository}"
    location = _start(session, repository, what, location)
    session.request(
        "PUT",
        _with_digest(location, desc),
        (push(repository),),
        headers={"Content-Type": _OCTETS, "Content-Length": str(desc.size)},
        body=chunks,
        ok=(201,),
        what=what,
    )


def upload_chunked(
    session: RegistrySession,
    repository: str,
    desc: Descriptor,
    chunks: Iterable[bytes],
    piece: int = PIECE,
    location: str | None = None,
) -> None:
    what = f"uploading blob {desc.digest.short} to {repository} in chunks"
    location = _start(session, repository, what, location)
    pieces = Pieces(chunks)
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
    pace: Pace | None = None,
) -> bool:
    """Upload in PATCH pieces, each recorded in ``book`` once the target acknowledged it,
    continuing an upload that an earlier run left there (``open_from(n)``: the blob from
    byte ``n`` on). A piece is sent as it arrives only from a fast source, and then
    inside ``open_from.hold()`` where it has one (a stop waits for the piece's end:
    see engine/stops.py); from a slower one it is read
    whole first, so a stop while reading never cuts a PATCH; a piece sent as it arrives
    grows with ``pace`` (see pieces.py). A digest
    the target refuses at commit drops the session. Returns whether an earlier upload
    was continued (its first bytes were not sent, nor checked, by this run)."""
    what = f"uploading blob {desc.digest.short} to {repository}"
    key = book.key(session.base_url, repository, str(desc.digest))
    held = held_upload(session, repository, book.get(key), desc, what)
    if held is None:
        book.drop(key)
        held = Held(_start(session, repository, what), 0)
        book.put(key, held)
    chunks = open_from(held.offset)
    try:
        sizes = (piece, pace or Pace())
        hold: Hold = getattr(open_from, "hold", contextlib.nullcontext)
        location, body, size = _send_pieces(
            session, repository, desc, chunks, held, book, key, sizes, hold
        )
        with hold() if size else contextlib.nullcontext():
            _commit(session, repository, desc, location, book, key, what, body, size)
    except DigestMismatchError:
        book.drop(key)  # wrong bytes from the source: none of this session is kept
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    book.drop(key)
    return held.offset > 0


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
    sizes: tuple[int, Pace],
    hold: Hold,
) -> tuple[str, bytes | Iterable[bytes], int]:
    """Send the pieces; return the location and what the closing PUT carries: nothing,
    or the whole blob when it fits one piece sent as it arrives (then the upload is a
    plain POST and PUT, the most common kind, with the session recorded)."""
    what = f"uploading blob {desc.digest.short} to {repository} in pieces"
    pieces = Pieces(chunks)
    offset, location = held.offset, held.location
    while offset < desc.size:
        piece, pace = sizes
        start = time.monotonic()
        body, size, streamed = next_piece(
            pieces, piece, desc.size - offset, pace.piece(piece), pace.rate
        )
        if streamed and size == desc.size:
            return location, chain(body, _finished(pieces)), size
        # sent as a stream either way: bounded by stalls, not by the exchange's timeout
        with hold() if streamed else contextlib.nullcontext():
            location = _patch(session, repository, location, offset, size, body, what)
        pace.note(size, time.monotonic() - start)
        offset += size
        book.put(key, Held(location, offset))
    pieces.finish()
    return location, b"", 0


def _finished(pieces: Pieces) -> Iterator[bytes]:
    """Nothing; checks that the blob had no more bytes (its digest was checked already)."""
    pieces.finish()
    yield from ()


def _close_upload(
    session: RegistrySession,
    repository: str,
    location: str,
    desc: Descriptor,
    what: str,
    body: bytes | Iterable[bytes] = b"",
    size: int = 0,
) -> Reply:
    """The PUT that ends an upload session (with the blob's last ``size`` bytes, or
    none): the registry checks the digest here."""
    return session.request(
        "PUT",
        _with_digest(location, desc),
        (push(repository),),
        headers={"Content-Type": _OCTETS, "Content-Length": str(size)},
        body=body,
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
    body: bytes | Iterable[bytes] = b"",
    size: int = 0,
) -> None:
    try:
        resp = _close_upload(session, repository, location, desc, what, body, size)
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
