"""Cooperative cancellation: a token checked between chunks and before requests."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from imageferry.core.errors import Cancelled

T = TypeVar("T")


class CancelToken:
    """Thread-safe flag. ``cancel()`` may be called from any thread (Ctrl-C, a GUI button)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the run was stopped."""
        if self._event.is_set():
            raise Cancelled()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) when cancelled."""
        if self._event.wait(max(0.0, seconds)):
            raise Cancelled()


def wait_for(future: Future[T], cancel: CancelToken) -> T:
    """``future.result()``, but Ctrl-C (also on Windows) cancels the run instead of crashing.

    After a KeyboardInterrupt the token is cancelled and the wait goes on, so
    workers finish their current step and every outcome is still collected.
    """
    while True:
        try:
            return future.result(timeout=0.25)
        except FutureTimeout:
            continue
        except KeyboardInterrupt:
            cancel.cancel()
