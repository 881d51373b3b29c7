"""Retry decisions in one place: what is worth retrying, and how long to wait.

The engine runs every request (or, for a streamed upload, every upload) through
:meth:`RetryPolicy.run`, each with its own ``retries``: faults met by different
requests never add up. What still fails gets a final pass, with
:meth:`RetryPolicy.final` (see engine/execute.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from imageferry.core.cancel import CancelToken
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.lazydata import quick_dataclass

T = TypeVar("T")


@quick_dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # extra attempts after the first
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, error: BaseException) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential backoff with jitter;
        a server's Retry-After is honoured (plus up to 10% jitter, so that the workers
        it stopped do not all come back at once), at most ``max_delay``."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = float(retry_after)
            return min(wait + random.uniform(0, wait / 10), self.max_delay)
        cap = min(self.max_delay, self.base_delay * (2**attempt))
        return random.uniform(cap / 2, cap)

    def final(self) -> RetryPolicy:
        """The policy of a final pass, the last try before something is declared failed:
        twice the retries (none when retrying is off)."""
        return replace(self, retries=2 * self.retries)

    def run(
        self,
        action: Callable[[], T],
        cancel: CancelToken,
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> T:
        """Run ``action``; retry it on temporary errors. Raises the last error.

        An error some inner :meth:`run` already gave up on (``retried_out``) is not
        retried again: nested operations never multiply the attempts."""
        attempt = 0
        while True:
            cancel.check()
            try:
                return action()
            except Cancelled:
                raise
            except ImageFerryError as exc:
                if not exc.temporary or exc.retried_out:
                    raise
                if attempt >= self.retries:
                    exc.retried_out = True
                    raise
                wait = self.delay(attempt, exc)
                if on_retry is not None:
                    on_retry(attempt + 1, exc, wait)
                cancel.sleep(wait)
                attempt += 1
