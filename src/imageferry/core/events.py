"""Progress events: what the engine tells front ends, logs and ``--json``.

Events are plain frozen values. The engine calls the sink from worker
threads; a sink must be thread-safe (the CLI renderer locks, the GUI queues).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PlanReady:
    images: int
    blobs: int
    bytes_total: int  # bytes that may have to move (before target HEAD checks)


@dataclass(frozen=True)
class BlobProgress:
    nbytes: int  # bytes just read from the source (or package)


@dataclass(frozen=True)
class BlobDone:
    digest: str
    size: int
    outcome: str  # "copied", "skipped", "mounted"
    where: str  # target name and repository


@dataclass(frozen=True)
class ImageDone:
    line: int
    source: str
    target: str
    status: str  # "copied", "skipped", "failed", "cancelled"
    error: str | None = None


@dataclass(frozen=True)
class Message:
    level: str  # "info", "warning", "error"
    text: str


Event = PlanReady | BlobProgress | BlobDone | ImageDone | Message
EventSink = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """An event sink that drops everything."""
