"""Watch (监控): keep targets in step with new tags of the listed repositories.

Each round: list the tags of every followed repository, pick the tags a line
asks for, ask the source for their digests, copy (with ``run_copy``, so dedupe,
mounts, skips, retries and the cache all apply) those that are new or whose
digest moved since the history last saw them delivered, record the history,
notify, and report a :class:`WatchRound` event.

:func:`run_watch` blocks; the window runs it on a worker thread
(``BackgroundJob``) and stops it with ``cancel.cancel()``. No signals here.
"""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from imageferry.core.cancel import CancelToken, wait_for
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import Cancelled, ImageFerryError, InputError, NotFoundError
from imageferry.core.events import EventSink, Message, WatchRound, say
from imageferry.core.imagelist import RENAME_ARROW, ListEntry
from imageferry.core.reference import check_tag
from imageferry.core.versions import parse_version, tags_at_or_above
from imageferry.engine.execute import ImageResult
from imageferry.engine.locations import Registry, open_registry, repository_tags
from imageferry.jobs.copy import run_copy
from imageferry.jobs.notify import ImageNote, Notifier, RoundNote, utc_now
from imageferry.jobs.options import TransferOptions
from imageferry.jobs.watch_history import WatchHistory

log = logging.getLogger("imageferry")
DEFAULT_INTERVAL = 300.0


@dataclass(frozen=True)
class WatchSettings:
    """How often a watch looks, which tags it follows, where it keeps history."""

    interval: float = DEFAULT_INTERVAL
    once: bool = False
    tags: re.Pattern[str] | None = None  # only tags this matches (re.search)
    history: Path = Path("imageferry-watch.json")
    page_size: int = 1000  # tags per /tags/list page


@dataclass(frozen=True)
class WatchResult:
    """How a watch ended: its rounds and the last one."""

    rounds: int
    last: WatchRound | None
    stopped: bool  # ended by cancel (Ctrl-C, SIGTERM, the window's button)

    @property
    def ok(self) -> bool:
        return self.last is not None and self.last.failed == 0 and self.last.error is None


def tag_filter(pattern: str | None) -> re.Pattern[str] | None:
    """``--tags REGEX`` compiled; InputError when it is not a regular expression."""
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"--tags '{pattern}' is not a regular expression: {exc}") from None


def follows_many(entry: ListEntry) -> bool:
    """A line without a tag, or with a version tag, follows many tags; another, one tag."""
    tag = entry.source.tag
    return tag is None or parse_version(tag) is not None


def check_watch_lines(entries: list[ListEntry], origin: str) -> None:
    """Refuse lines watch cannot follow, naming each; nothing starts then."""
    problems = []
    for e in entries:
        if e.source.digest is not None:
            problems.append(
                f"{origin}, line {e.line}: a digest never changes, so there is nothing to "
                "watch; use 'imageferry copy' for it, or give a tag"
            )
        elif e.rename is not None and e.rename.tag and follows_many(e):
            problems.append(
                f"{origin}, line {e.line}: this line follows many tags, so the new name "
                "cannot fix one tag; rename the repository only ('src -> newname')"
            )
    if problems:
        raise InputError("\n".join(problems) + "\nFix these lines and run again.")


def run_watch(
    config: Config,
    entries: list[ListEntry],
    source_cfg: RegistryConfig,
    target_cfgs: list[RegistryConfig],
    options: TransferOptions,
    settings: WatchSettings,
    events: EventSink,
    cancel: CancelToken,
    origin: str = "image list",
) -> WatchResult:
    """Blocking: rounds until cancelled (or one round with ``settings.once``).

    One round's failure never ends the watch: it is reported in its WatchRound
    event and the next round tries again.
    """
    check_watch_lines(entries, origin)
    config.require_notify_env()
    history, warning = WatchHistory.load(settings.history)
    if warning:
        events(Message("warning", warning))
    notifier = Notifier(config.webhook, config.dingtalk, events, cancel)
    watch = _Watch(config, entries, source_cfg, target_cfgs, options, settings, events, cancel)
    rounds, last = 0, None
    while not cancel.cancelled:
        rounds += 1
        started = time.monotonic()
        outcome = watch.round(history, origin)
        if cancel.cancelled:
            break
        wait = 0.0 if settings.once else max(0.0, settings.interval - (time.monotonic() - started))
        last = outcome.event(rounds, None if settings.once else time.time() + wait)
        events(last)
        if outcome.notes:
            notifier.round_done(RoundNote(rounds, *outcome.counts, tuple(outcome.notes), utc_now()))
        if settings.once:
            break
        try:
            _sleep(cancel, started + settings.interval)
        except Cancelled:
            break
    return WatchResult(rounds, last, cancel.cancelled)


def _sleep(cancel: CancelToken, until: float) -> None:
    """Until monotonic ``until``, in short slices so a signal handler runs (also on Windows)."""
    while (left := until - time.monotonic()) > 0:
        cancel.sleep(min(left, 0.5))


@dataclass
class _Outcome:
    """What one round did."""

    results: list[ImageResult]
    followed: int = 0
    error: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.count("copied"), self.count("skipped"), self.count("failed")

    @property
    def notes(self) -> list[ImageNote]:
        return [ImageNote.of(r) for r in self.results if r.status in ("copied", "failed")]

    def event(self, number: int, next_at: float | None) -> WatchRound:
        copied, skipped, failed = self.counts
        return WatchRound(
            number, copied, skipped, failed, self.followed, time.time(), next_at, self.error
        )


@dataclass
class _Watch:
    """A watch's fixed parts: the list, the registries, the options."""

    config: Config
    entries: list[ListEntry]
    source_cfg: RegistryConfig
    target_cfgs: list[RegistryConfig]
    options: TransferOptions
    settings: WatchSettings
    events: EventSink
    cancel: CancelToken

    def round(self, history: WatchHistory, origin: str) -> _Outcome:
        """One round. Never raises: a problem lands in the outcome (and a Message event)."""
        outcome = _Outcome([])
        try:
            wanted = self._wanted(outcome)
            outcome.followed = len(wanted)
            needed = [e for e, digest in wanted if self._moved(history, e, digest)]
            if needed:
                result = run_copy(
                    self.config,
                    needed,
                    self.source_cfg,
                    self.target_cfgs,
                    self.options,
                    self.events,
                    self.cancel,
                    origin,
                )
                outcome.results = result.images
                self._record(history, result.images, dict(wanted))
        except Cancelled:
            pass
        except ImageFerryError as exc:
            outcome.error = str(exc)
            self.events(say("error", "watch round failed: {error}", error=str(exc)))
        except Exception as exc:  # a bug must not end a watch left running: log, go on
            log.exception("internal error in a watch round")
            outcome.error = f"internal error ({type(exc).__name__}); details are in the log"
            self.events(say("error", "watch round failed: {error}", error=outcome.error))
        return outcome

    def _wanted(self, outcome: _Outcome) -> list[tuple[ListEntry, str]]:
        """(one entry per followed tag, its source digest now), deduplicated."""
        registry = open_registry(self.config, self.source_cfg, writable=False)
        try:
            chosen: dict[tuple[str, str], ListEntry] = {}
            for entry in self.entries:
                for tag in self._tags(registry, entry, outcome):
                    e = _for_tag(entry, tag)
                    chosen.setdefault((str(e.source), str(e.rename)), e)
            entries = list(chosen.values())
            with ThreadPoolExecutor(self.options.workers, thread_name_prefix="watch") as pool:
                futures = [pool.submit(self._digest, registry, e) for e in entries]
                digests = [wait_for(f, self.cancel) for f in futures]
        finally:
            registry.close()
        for e, d in zip(entries, digests, strict=True):
            if d is None:
                self.events(
                    say(
                        "warning",
                        "line {line}: {image} is not in the source",
                        line=e.line,
                        image=str(e.source),
                    )
                )
        return [(e, d) for e, d in zip(entries, digests, strict=True) if d is not None]

    def _tags(self, registry: Registry, entry: ListEntry, outcome: _Outcome) -> list[str]:
        repo, tag = entry.source.repository, entry.source.tag
        if tag is not None and not follows_many(entry):
            return [tag]
        try:
            tags = self.options.policy.run(
                lambda: repository_tags(registry, repo, self.cancel, self.settings.page_size),
                self.cancel,
            )
        except NotFoundError:
            self.events(
                say(
                    "warning",
                    "line {line}: {repository} is not in the source yet",
                    line=entry.line,
                    repository=repo,
                )
            )
            return []
        except Cancelled:
            raise
        except ImageFerryError as exc:  # one repository's problem is not every line's
            problem = f"line {entry.line}: cannot list {repo}'s tags: {exc}"
            self.events(Message("error", problem))
            outcome.error = outcome.error or problem  # the round says so; the others go on
            return []
        tags = [t for t in tags if _is_tag(t)]  # a name no reference can hold is not followed
        chosen = tags_at_or_above(tags, tag) if tag is not None else tags
        pattern = self.settings.tags
        return [t for t in chosen if pattern is None or pattern.search(t)]

    def _digest(self, registry: Registry, entry: ListEntry) -> str | None:
        ref = entry.source
        try:
            digest = self.options.policy.run(
                lambda: registry.manifest_digest(ref.repository, ref.tag_or_digest), self.cancel
            )
        except Cancelled:
            raise
        except ImageFerryError as exc:
            self.events(Message("error", f"line {entry.line}: cannot look up {ref}: {exc}"))
            return None
        return str(digest) if digest is not None else None

    def _target_refs(self, entry: ListEntry) -> list[str]:
        return [str(entry.target_ref(t.address.host, t.repository)) for t in self.target_cfgs]

    def _moved(self, history: WatchHistory, entry: ListEntry, digest: str) -> bool:
        """New for some target, or its digest moved since it was delivered there."""
        return any(history.digest_at(ref) != digest for ref in self._target_refs(entry))

    def _record(
        self, history: WatchHistory, results: list[ImageResult], wanted: dict[ListEntry, str]
    ) -> None:
        host = self.source_cfg.address.host
        digest_of = {str(e.source_ref(host)): d for e, d in wanted.items()}
        for r in results:
            digest = digest_of.get(r.source)
            if r.status in ("copied", "skipped") and digest is not None:
                history.record(r.target, r.source, digest)
        try:
            history.save()
        except OSError as exc:
            self.events(
                Message("warning", f"cannot write watch history {history.path}: {exc.strerror}")
            )


def _is_tag(name: str) -> bool:
    try:
        check_tag(name)
    except ImageFerryError:
        return False
    return True


def _for_tag(entry: ListEntry, tag: str) -> ListEntry:
    """The line narrowed to one tag (its rename kept), as copy takes it."""
    source = replace(entry.source, tag=tag, digest=None)
    text = f"{source}"
    if entry.rename is not None:
        text += f" {RENAME_ARROW} {entry.text.partition(RENAME_ARROW)[2].strip()}"
    return ListEntry(entry.line, text, source, entry.rename)
