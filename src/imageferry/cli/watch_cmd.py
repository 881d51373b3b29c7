"""``imageferry watch``: rounds of copy for new tags until Ctrl-C / SIGTERM (or ``--once``).

Output: image lines and warnings on stderr as copy prints them, one summary
line per round on stdout; with ``--json``, one JSON object per line on stdout
for every round and one at the end (JSON Lines: a watch has no single end).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.core.cancel import CancelToken
from imageferry.core.errors import InputError
from imageferry.core.events import Event, ImageDone, Message, WatchRound
from imageferry.jobs.progress import RunProgress
from imageferry.jobs.watch import (
    WatchResult,
    WatchSettings,
    check_watch_lines,
    run_watch,
    tag_filter,
)
from imageferry.jobs.watch_history import default_history_path

MAX_INTERVAL = 7 * 24 * 3600
log = logging.getLogger("imageferry")


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    settings = WatchSettings(
        interval=interval_from(args.interval, config.interval),
        once=args.once,
        tags=tag_filter(args.tags),
        history=Path(args.history) if args.history else default_history_path(config),
    )
    images = inputs.read_image_list(args)
    check_watch_lines(images.entries, images.origin)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = options.transfer(config, args)
    cancel = CancelToken()
    out = WatchOutput(args.json)
    with stop_on_signals(cancel):
        result = run_watch(
            config, images.entries, source, targets, opts, settings, out, cancel, images.origin
        )
    return out.finish(result)


def interval_from(given: float | None, configured: float) -> float:
    seconds = given if given is not None else configured
    if not 1 <= seconds <= MAX_INTERVAL:
        raise InputError(f"--interval must be between 1 and {MAX_INTERVAL} seconds, not {seconds}")
    return seconds


@contextmanager
def stop_on_signals(cancel: CancelToken) -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the watch cleanly; a second Ctrl-C stops it at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        cancel.cancel()

    previous: dict[int, Any] = {}
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name) and threading.current_thread() is threading.main_thread():
            sig = getattr(signal, name)
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _clock(at: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at is not None else None


class WatchOutput:
    """The event sink of a watch: image lines per round, a summary per round."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.renderer = Renderer("quiet" if as_json or sys.stderr is None else "plain")
        self._lock = threading.Lock()
        self._images: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, WatchRound):
            self._round(event)
            return
        if isinstance(event, ImageDone | Message):
            with self._lock:
                if isinstance(event, ImageDone):
                    self._images.append(event.__dict__)
                else:  # the English text; the template is for front ends that translate
                    self._messages.append({"level": event.level, "text": event.text})
        self.renderer(event)

    def _round(self, event: WatchRound) -> None:
        with self._lock:
            images, self._images = self._images, []
            messages, self._messages = self._messages, []
        self.renderer.progress = RunProgress()  # each round's numbers start afresh
        next_at = _clock(event.next_at)
        if self.as_json:
            doc = {"command": "watch", **event.__dict__, "images": images, "messages": messages}
            doc["ok"] = event.failed == 0 and event.error is None
            doc["next_at"] = next_at
            doc["finished_at"] = _clock(event.finished_at)
            log.info(
                "watch round %d: %d copied, %d failed", event.round, event.copied, event.failed
            )
            print(json.dumps(doc, ensure_ascii=False), flush=True)
            return
        text = (
            f"round {event.round}: {event.copied} copied, {event.skipped} skipped, "
            f"{event.failed} failed ({event.followed} tag(s) followed)"
        )
        if event.error:
            text += f"; round failed: {event.error}"
        if next_at:
            text += f"; next round at {next_at}"
        log.info("watch %s", text)
        print(text, flush=True)

    def finish(self, result: WatchResult) -> int:
        """Exit code: 0 when stopped by the user or the last round went well, else 1."""
        code = 0 if result.stopped or result.ok else 1
        if self.as_json:
            doc = {"command": "watch", "ok": code == 0, "rounds": result.rounds}
            doc["stopped"] = result.stopped
            print(json.dumps(doc), flush=True)
        elif result.stopped:
            print(f"watch stopped after {result.rounds} round(s)", flush=True)
        return code
