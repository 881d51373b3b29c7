"""What one HTTP exchange gives back, read with bounded memory and bounded time.

:class:`Reply` is a small answer read whole (at most ``limit`` bytes);
:class:`Stream` is a blob body read piece by piece, where every piece must
arrive within the session's ``timeout`` (a stall, or a drip slower than
``PIECE`` bytes per ``timeout``, drops the connection as a temporary error).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from imageferry.core.errors import RegistryError
from imageferry.core.lazydata import quick_dataclass
from imageferry.registry.deadline import Deadline
from imageferry.registry.pool import NETWORK_ERRORS, Headers, Response

CHUNK = 1024 * 1024  # what a stream yields
PIECE = 256 * 1024  # what must arrive within one timeout
ERROR_LIMIT = 64 * 1024


@quick_dataclass(frozen=True)
class Reply:
    """A registry's answer, body read."""

    status: int
    headers: Headers
    data: bytes


def timed_out(what: str, name: str, deadline: Deadline) -> RegistryError:
    return RegistryError(
        f"{what} at {name}: no complete answer within {deadline.seconds:g} s; the registry "
        "stalls or is very slow (raise 'timeout' in cfg.yaml if it is only slow)",
        temporary=True,
    )


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` asks us to wait: delta-seconds or an HTTP date
    (None when absent or unreadable: then our own backoff applies)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may omit it
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def read_body(resp: Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether that was all of it.

    Reads until the end is seen, so a body cut short raises (the transport's own
    errors; the caller translates them) instead of passing for a whole one."""
    parts: list[bytes] = []
    total = 0
    while total <= limit:
        piece = resp.read(limit + 1 - total)
        if not piece:
            break
        parts.append(piece)
        total += len(piece)
    data = b"".join(parts)
    return data[:limit], total <= limit


def release(resp: Response, deadline: Deadline | None, complete: bool) -> None:
    """Hand the connection back (or drop it when its body was not read to the end)."""
    if deadline is not None:
        deadline.close()
    if not complete:
        with contextlib.suppress(Exception):
            resp.close()
    with contextlib.suppress(Exception):
        resp.release_conn()


class Stream(Iterator[bytes]):
    """A response whose body is read as it is consumed: iterate over its chunks.

    Close it when done (also when never iterated): that releases the connection."""

    def __init__(self, resp: Response, deadline: Deadline, what: str, name: str) -> None:
        self.resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self._deadline = deadline
        self._what = what
        self._name = name
        self._chunks: Generator[bytes, None, None] = self._read()

    def __next__(self) -> bytes:
        return next(self._chunks)

    def _read(self) -> Generator[bytes, None, None]:
        """The body in chunks; when the connection breaks (or stalls) mid-body, the bytes
        that did arrive are handed out first, then the error is raised: a reader can
        resume from there."""
        complete = False
        parts: list[bytes] = []
        held = 0
        failure: RegistryError | None = None
        try:
            while True:
                self._deadline.extend()
                piece = self.resp.read(PIECE)
                if self._deadline.expired:
                    raise ConnectionAbortedError("cut by the deadline")
                if not piece:
                    break
                parts.append(piece)
                held += len(piece)
                if held >= CHUNK:
                    self._deadline.pause()  # a slow consumer is not a slow registry
                    chunk, parts, held = b"".join(parts), [], 0
                    yield chunk
            complete = True
        except NETWORK_ERRORS as exc:
            failure = self._failure(exc)
        finally:
            release(self.resp, self._deadline, complete)
        if parts:
            yield b"".join(parts)
        if failure is not None:
            raise failure

    def _failure(self, exc: BaseException) -> RegistryError:
        if self._deadline.expired:
            return timed_out(self._what, self._name, self._deadline)
        return RegistryError(
            f"{self._what} at {self._name}: connection broke mid-blob ({type(exc).__name__})",
            temporary=True,
        )

    def close(self) -> None:
        self._chunks.close()
        release(self.resp, self._deadline, False)
