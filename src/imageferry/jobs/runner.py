"""Run a job on a worker thread and hand its events to a front end through a queue.

The window cannot block: it starts a :class:`BackgroundJob`, polls
:meth:`BackgroundJob.drain` from its own loop (Tk's ``after()``), and calls
:meth:`BackgroundJob.stop` for 停止. Nothing here knows about any toolkit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from imageferry.core.cancel import CancelToken
from imageferry.core.errors import Cancelled, ImageFerryError
from imageferry.core.events import Event, EventSink
from imageferry.jobs.progress import RunProgress

R = TypeVar("R")
log = logging.getLogger("imageferry")


class BackgroundJob(Generic[R]):
    """``work(events, cancel)`` on a daemon thread; its result or error kept for the caller.

    ``progress`` sees every event on the worker thread (so its numbers are
    current); ``drain()`` returns the events queued since the last call.
    """

    def __init__(self, name: str, work: Callable[[EventSink, CancelToken], R]) -> None:
        self.name = name
        self.cancel = CancelToken()
        self.progress = RunProgress()
        self.result: R | None = None
        self.error: ImageFerryError | None = None
        self.crashed: BaseException | None = None  # a bug: details in the log
        self._work = work
        self._events: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)

    def start(self) -> BackgroundJob[R]:
        self._thread.start()
        return self

    def _sink(self, event: Event) -> None:
        self.progress(event)
        self._events.put(event)

    def _run(self) -> None:
        try:
            self.result = self._work(self._sink, self.cancel)
        except Cancelled:
            self.cancel.cancel()
        except ImageFerryError as exc:
            self.error = exc
        except Exception as exc:  # a bug: keep the traceback in the log, tell the window
            log.exception("internal error in %s", self.name)
            self.crashed = exc

    def stop(self) -> None:
        """Ask the job to stop; it finishes its current step and returns a cancelled result."""
        self.cancel.cancel()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def stopped(self) -> bool:
        return self.cancel.cancelled

    def drain(self, limit: int = 1000) -> list[Event]:
        out: list[Event] = []
        while len(out) < limit:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                break
        return out

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True when the job has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
