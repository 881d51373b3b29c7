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
        on_prefix: Callable[[bytes], None] | None = None,
    ) -> None:
        """``start``: the byte to begin at (an upload the target holds part of).
        ``on_prefix`` sees the bytes before ``start`` when the source sends them anyway
        (it ignores Range, or it is local); :attr:`prefix_whole` says whether it saw all."""
        self._source = source
        self._repository = repository
        self._desc = desc
        self._retried = retried
        self._policy = policy
        self._cancel = cancel
        self._events = events
        self.offset = start  # the blob's bytes up to here are delivered
        self._said_full_read = False
        self._on_prefix = on_prefix
        self._skipper: Skipped | None = None
        self._start = start
        self._prefix_broken = False  # reopened before the prefix was seen whole
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
            stream, start = self._source.open_blob(self._repository, self._desc), 0
        else:
            stream, start = opener(self._repository, self._desc, self.offset)
        if start == self.offset:
            return stream
        self._say_full_read()
        if start == 0 and self._skipper is None and self._on_prefix is not None:
            self._skipper = Skipped(stream, self.offset, self._on_prefix)  # the first open
            return self._skipper
        return Skipped(stream, self.offset - start)

    @property
    def prefix_whole(self) -> bool:
        """Whether ``on_prefix`` saw every byte before ``start``, once."""
        if self._start == 0:
            return True
        return self._skipper is not None and self._skipper.done and not self._prefix_broken

    def _say_full_read(self) -> None:
        if self._said_full_read:
            return
        self._said_full_read = True
        text = (
            f"the source cannot start blob {self._desc.digest.short} at byte {self.offset}: "
            f"reading it from the start (the first {self.offset} bytes are only checked)"
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
            if self._skipper is not None and not self._skipper.done:
                self._prefix_broken = True
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

    def __init__(
        self, chunks: Iterator[bytes], count: int, on_skip: Callable[[bytes], None] | None = None
    ) -> None:
        self._chunks = chunks
        self._left = count
        self._on_skip = on_skip

    @property
    def done(self) -> bool:
        return self._left == 0

    def __next__(self) -> bytes:
        while True:
            chunk = next(self._chunks)
            if self._left >= len(chunk):
                self._left -= len(chunk)
                if self._on_skip is not None:
                    self._on_skip(chunk)
                continue
            if self._on_skip is not None and self._left:
                self._on_skip(chunk[: self._left])
            chunk, self._left = chunk[self._left :], 0
            return chunk

    def close(self) -> None:
        _close(self._chunks)


def _close(chunks: object) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def suffix_chunks(
    desc: Descriptor,
    start: int,
    opener: Callable[[int, Callable[[bytes], None]], ResumedStream],
    seen: Callable[[bytes], None],
) -> Generator[bytes, None, None]:
    """The blob from byte ``start`` on (``opener(start, on_prefix)``), each chunk passed to
    ``seen``; closes the stream at the end. The last chunk is let out only after the
    check: the digest of the whole when the source sent the first ``start`` bytes too
    (or ``start`` is 0), else the length (the target checks the digest of all it holds
    at commit)."""
    hasher = desc.digest.hasher()
    stream = opener(start, hasher.update)
    want, got = desc.size - start, 0
    held: bytes | None = None
    try:
        for chunk in stream:
            if not chunk:
                continue
            seen(chunk)
            hasher.update(chunk)
            got += len(chunk)
            if got > want:
                break
            if held is not None:
                yield held
            held = chunk
        _check_suffix(desc, start, got, hasher.hexdigest() if stream.prefix_whole else None)
        if held is not None:
            yield held
    finally:
        stream.close()


def _check_suffix(desc: Descriptor, start: int, got: int, hex_: str | None) -> None:
    if start + got != desc.size:
        raise DigestMismatchError(
            f"blob {desc.digest.short}: the source gave {start + got} bytes, not {desc.size}",
            expected=str(desc.digest),
            actual=f"({start + got} bytes)",
        )
    if hex_ is not None and hex_ != desc.digest.hex:
        raise DigestMismatchError(
            f"blob {desc.digest.short}: the source's bytes have digest "
            f"{desc.digest.algorithm}:{hex_}",
            expected=str(desc.digest),
            actual=f"{desc.digest.algorithm}:{hex_}",
        )
