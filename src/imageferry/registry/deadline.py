"""Deadlines for HTTP exchanges: a watchdog cuts a connection whose time is up.

Socket timeouts bound each single read, so a server that drips one byte every
few seconds never trips them and keeps a run alive forever. A
:class:`Deadline` bounds a whole exchange (or, re-armed per piece, the stall
of a stream): while it is bound to the calling thread, every connection that
sends a request registers with it, and when it expires one shared watchdog
thread shuts that connection's socket down, which wakes the blocked reader
with an error. The reader then sees :attr:`Deadline.expired`.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

TICK = 0.1
_local = threading.local()


class Deadline:
    """``seconds`` from now (or from the last :meth:`extend`); thread-safe."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._until = time.monotonic() + seconds
        self._conn: Any = None
        self._lock = threading.Lock()
        _WATCHDOG.add(self)

    def extend(self) -> None:
        """Another ``seconds`` from now."""
        self._until = time.monotonic() + self.seconds

    def pause(self) -> None:
        """Stop the clock (while a consumer, not the server, is slow)."""
        self._until = math.inf

    @contextlib.contextmanager
    def bound(self) -> Iterator[Deadline]:
        """Connections that send a request in this thread meanwhile are watched."""
        previous = getattr(_local, "deadline", None)
        _local.deadline = self
        try:
            yield self
        finally:
            _local.deadline = previous

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn
            if self.expired:
                _cut(conn)

    def detach(self) -> None:
        """Forget the connection (before it goes back to the pool)."""
        with self._lock:
            self._conn = None

    def close(self) -> None:
        """Done: forget the connection and stop watching."""
        self.detach()
        _WATCHDOG.discard(self)

    def check(self, now: float) -> None:
        """Called by the watchdog: cut the connection once the time is up."""
        if now < self._until:
            return
        with self._lock:
            self.expired = True
            if self._conn is not None:
                _cut(self._conn)  # again each tick: a connect may have finished since


def current_expired() -> Deadline | None:
    """The deadline bound to this thread, if it has expired."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return deadline if deadline is not None and deadline.expired else None


def forget_connection() -> None:
    """The connection of this thread's exchange goes back to the pool: the deadline must not
    cut it later, when another thread may be using it."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.detach()


def _cut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError, TypeError):
        # the plain socket call, also for TLS sockets: it wakes a blocked read
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread, running only while some deadline is active."""

    def __init__(self) -> None:
        self._active: set[Deadline] = set()
        self._lock = threading.Lock()
        self._running = False

    def add(self, deadline: Deadline) -> None:
        with self._lock:
            self._active.add(deadline)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="deadline", daemon=True).start()

    def discard(self, deadline: Deadline) -> None:
        with self._lock:
            self._active.discard(deadline)

    def _run(self) -> None:
        while True:
            time.sleep(TICK)
            with self._lock:
                if not self._active:
                    self._running = False
                    return
                active = list(self._active)
            now = time.monotonic()
            for deadline in active:
                deadline.check(now)


_WATCHDOG = _Watchdog()


def watch(conn: Any) -> None:
    """``conn`` is about to send a request: the deadline bound to this thread watches it."""
    deadline: Deadline | None = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.attach(conn)
