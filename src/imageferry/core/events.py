"""Progress events: what the engine tells front ends, logs and ``--json``.

Events are plain frozen values. The engine calls the sink from worker
threads; a sink must be thread-safe (the CLI renderer locks, the GUI queues).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from imageferry.core.lazydata import lazy_dataclass, quick_dataclass

# What happened to one image on one target.
ImageStatus = Literal["copied", "skipped", "failed", "cancelled"]
# What happened to one blob on one target.
BlobOutcome = Literal["copied", "skipped", "mounted"]
# How a target stands for one checked image.
TargetStateName = Literal["same", "differs", "missing", "error"]
Level = Literal["info", "warning", "error"]
# A long step before or after the transfer proper (sizes known up front).
StageName = Literal["verifying", "finishing"]


@quick_dataclass(frozen=True)
class PlanReady:
    images: int
    blobs: int
    bytes_total: int  # bytes that may have to move (before target HEAD checks)
    targets: tuple[str, ...] = ()  # every image goes to each of these
    referrers: int = 0  # signatures, SBOMs, attestations found with the images


@lazy_dataclass(frozen=True)
class BlobProgress:
    nbytes: int  # bytes just read from the source (or package)


@lazy_dataclass(frozen=True)
class BlobDone:
    digest: str
    size: int
    outcome: BlobOutcome
    where: str  # target name and repository


@quick_dataclass(frozen=True)
class ImageDone:
    line: int
    source: str
    target: str
    status: ImageStatus
    error: str | None = None
    target_name: str = ""


@lazy_dataclass(frozen=True)
class Message:
    level: Level
    text: str  # in English: the log file, --json
    template: str = ""  # ``text`` before its values went in: a catalog entry to translate
    values: tuple[tuple[str, object], ...] = ()

    def translated(self, gettext: Callable[[str], str]) -> str:
        """The text in the front end's language (as is when it has no template)."""
        if not self.template:
            return self.text
        try:
            return gettext(self.template).format(**dict(self.values))
        except (KeyError, IndexError, ValueError):  # a translation with a wrong placeholder
            return self.text


def say(level: Level, template: str, **values: object) -> Message:
    """A Message front ends can translate: ``template`` is an entry of the catalogs."""
    return Message(level, template.format(**values), template, tuple(values.items()))


@lazy_dataclass(frozen=True)
class StageStarted:
    """A package is being verified, or a save's data files hashed: ``total`` bytes to read."""

    stage: StageName
    total: int


@lazy_dataclass(frozen=True)
class StageProgress:
    nbytes: int  # bytes of the current stage just read


@lazy_dataclass(frozen=True)
class TargetState:
    target_name: str
    ref: str
    state: TargetStateName
    error: str | None = None


@lazy_dataclass(frozen=True)
class ImageChecked:
    """``check``: one list line resolved and looked up (sent as each line finishes)."""

    line: int
    source: str
    digest: str | None
    targets: tuple[TargetState, ...]
    error: str | None = None
    missing: bool = False  # the source answered: no such image (else ``error`` says why)
    referrers: tuple[str, ...] = ()  # artifact types of its signatures, SBOMs, attestations

    @property
    def exists(self) -> bool:
        return self.digest is not None

    @property
    def ok(self) -> bool:
        """Found in the source, and every target already holds the same image."""
        return self.exists and all(t.state == "same" for t in self.targets)


@lazy_dataclass(frozen=True)
class WatchRound:
    """``watch``: one round ended (sent after its images' events)."""

    round: int
    copied: int
    skipped: int
    failed: int
    followed: int  # tags followed this round (listed and chosen)
    finished_at: float  # time.time() when the round ended
    next_at: float | None  # time.time() of the next round; None: no next round
    error: str | None = None  # why the round could not run (a line or registry problem)


Event = (
    PlanReady
    | BlobProgress
    | BlobDone
    | ImageDone
    | Message
    | StageStarted
    | StageProgress
    | ImageChecked
    | WatchRound
)
EventSink = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """An event sink that drops everything."""
