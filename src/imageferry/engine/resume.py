"""A source stream that survives a break mid-blob: it is reopened where it broke.

A source that can start a blob at an offset (``open_blob_from``, a registry's
Range GET) is asked for the rest only; any other source, or a registry that
ignores the range, is read again from the start and the bytes already
delivered are skipped. The consumer sees one unbroken stream either way (and
verifies it whole against the digest).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

from imageferry.core.cancel import CancelToken
from imageferry.core.errors import Cancelled, DigestMismatchError, ImageFerryError
from imageferry.core.events import EventSink, Message
from imageferry.core.manifest import Descriptor
from imageferry.core.retry import RetryPolicy
from imageferry.core.store import BlobSource


class ResumedStream(Iterator[bytes]):
    """The chunks of one blob from ``source``. Opens it at once, so a source that
    lacks the blob fails before anything is sent anywhere. Close it when done.

    Opening is one request with its own attempts (``retried``); a break mid-blob
    costs one of the policy's ``retries`` only when no byte arrived since the
    last break, so a long blob on a flaky line still arrives."""

    def __init__(
        self,
        source: BlobSource,
        repository: str,
        desc: Descriptor,
        retried: Callable[[Callable[[], Iterator[bytes]], str], Iterator[bytes]],
        policy: RetryPolicy,
        cancel: CancelToken,
        events: EventSink,
        start: int = 0,
    ) -> None:
        """``start``: the byte to begin at (an upload the target holds part of)."""
        self._source = source
        self._repository = repository
        self._desc = desc
        self._retried = retried
        self._policy = policy
        self._cancel = cancel
        self._events = events
        self.offset = start  # the blob's bytes up to here are delivered
        self._said_full_read = False
        self.resumed = 0  # how often the stream was reopened mid-blob
        self._stream = self._open()
        self._chunks = self._read()

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        _close(self._stream)

    def _open(self) -> Iterator[bytes]:
        return self._retried(self._open_once, f"reading blob {self._desc.digest.short}")

    def _open_once(self) -> Iterator[bytes]:
        if self.offset == 0:
            return self._source.open_blob(self._repository, self._desc)
        opener: Any = getattr(self._source, "open_blob_from", None)
        if opener is None:
            self._say_full_read()
            return Skipped(self._source.open_blob(self._repository, self._desc), self.offset)
        stream, start = opener(self._repository, self._desc, self.offset)
        if start == self.offset:
            return stream
        self._say_full_read()
        return Skipped(stream, self.offset - start)

    def _say_full_read(self) -> None:
        if self._said_full_read:
            return
        self._said_full_read = True
        text = (
            f"the source cannot start blob {self._desc.digest.short} at byte {self.offset}: "
            f"reading it from the start and skipping {self.offset} bytes"
        )
        self._events(Message("warning", text))

    def _read(self) -> Generator[bytes, None, None]:
        breaks = 0  # since the last byte that arrived
        while True:
            try:
                for chunk in self._stream:
                    if chunk:
                        self.offset += len(chunk)
                        breaks = 0
                        yield chunk
                return
            except Cancelled:
                raise
            except ImageFerryError as exc:
                if isinstance(exc, DigestMismatchError) or not exc.temporary:
                    raise
                if breaks >= self._policy.retries:
                    exc.retried_out = True
                    raise
                self._wait(breaks, exc)
                breaks += 1
            _close(self._stream)
            self._stream = self._open()
            self.resumed += 1

    def _wait(self, attempt: int, exc: ImageFerryError) -> None:
        wait = self._policy.delay(attempt, exc)
        text = (
            f"blob {self._desc.digest.short} broke after {self.offset} of {self._desc.size} "
            f"bytes; resuming in {wait:.1f}s: {exc}"
        )
        self._events(Message("warning", text))
        self._cancel.sleep(wait)


class Skipped(Iterator[bytes]):
    """``chunks`` without their first ``count`` bytes; ``close`` closes ``chunks``."""

    def __init__(self, chunks: Iterator[bytes], count: int) -> None:
        self._chunks = chunks
        self._left = count

    def __next__(self) -> bytes:
        while True:
            chunk = next(self._chunks)
            if self._left >= len(chunk):
                self._left -= len(chunk)
                continue
            chunk, self._left = chunk[self._left :], 0
            return chunk

    def close(self) -> None:
        _close(self._chunks)


def _close(chunks: object) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
