"""A background thread that commits the save's journal a little after it is asked to.

Claims (a blob is written, the first bytes of a large blob are) are made durable
in groups: the data files they name are fsynced, then the claims are appended to
the journal and it is fsynced (``Journal.commit``). One group at most every
:data:`COMMIT_EVERY` seconds keeps fsync off the workers' path (and writes the data
out while the save goes on, so little is left for the end); a ``kill -9``
costs at most the work of that last stretch (a rerun saves it again). A clean
stop (Ctrl-C, an error) commits everything before it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

COMMIT_EVERY = 0.05  # seconds


class Committer:
    """Calls ``commit`` in its own thread, ``every`` seconds after the first ``due()``."""

    def __init__(self, commit: Callable[[], None], every: float | None = None) -> None:
        self._commit = commit
        self._every = COMMIT_EVERY if every is None else every
        self._cond = threading.Condition()
        self._due_at: float | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def due(self) -> None:
        """There is something to commit: commit it within ``every`` seconds."""
        with self._cond:
            if self._stopped or self._due_at is not None:
                return
            self._due_at = time.monotonic() + self._every
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="journal", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while self._wait():
            try:
                self._commit()
            except Exception as exc:  # the claims stay pending; the save's end says it too
                log.warning("journal commit failed: %s", exc)

    def _wait(self) -> bool:
        """Until a commit is due (True), or the committer is stopped (False)."""
        with self._cond:
            while not self._stopped:
                if self._due_at is None:
                    self._cond.wait()
                    continue
                left = self._due_at - time.monotonic()
                if left <= 0:
                    self._due_at = None
                    return True
                self._cond.wait(left)
            return False

    def stop(self) -> None:
        """End the thread (a commit under way finishes first). Idempotent."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
