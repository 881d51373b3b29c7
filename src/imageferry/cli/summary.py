"""The end of a run: a summary line, what is not done, and --json output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from imageferry.cli.render import Renderer, human_bytes
from imageferry.core.cancel import CancelToken
from imageferry.core.events import EventSink
from imageferry.i18n import _, state_word
from imageferry.jobs.inputs import ImageList
from imageferry.jobs.results import RunResult


def print_json(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    print()


def result_json(command: str, result: RunResult, images: ImageList | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "command": command,
        "ok": result.ok,
        "cancelled": result.cancelled,
        "seconds": round(result.seconds, 3),
        "bytes_read": result.bytes_read,
        "blobs": result.blobs,
        "referrers": result.referrers,
        "images": [
            {**r.__dict__, "text": images.text_of(r.line) if images else r.source}
            for r in result.images
        ],
    }
    if result.package:
        doc["package"] = str(result.package)
        doc["files"] = [{"name": n, "size": size} for n, size in result.files]
    return doc


def print_result(command: str, result: RunResult, images: ImageList | None) -> None:
    counts = ", ".join(
        f"{result.count(s)} {state_word(s)}"
        for s in ("copied", "skipped", "failed", "cancelled")
        if result.count(s)
    )
    blobs = ", ".join(f"{n} {state_word(k)}" for k, n in result.blobs.items() if n) or _("none")
    speed = result.bytes_read / max(result.seconds, 1e-6)
    print(
        _(
            "done in {seconds}s. images: {images}; referrers: {referrers}; blobs: {blobs}; "
            "{read} read ({speed}/s)"
        ).format(
            seconds=f"{result.seconds:.1f}",
            images=counts or _("none"),
            referrers=result.referrers or _("none"),
            blobs=blobs,
            read=human_bytes(result.bytes_read),
            speed=human_bytes(speed),
        )
    )
    if result.package:
        print(_("package: {path}").format(path=result.package))
        for name, size in result.files:
            print(f"  {name}  {human_bytes(size)}")
    _print_not_done(command, result, images)


def _print_not_done(command: str, result: RunResult, images: ImageList | None) -> None:
    failed = [r for r in result.images if r.status in ("failed", "cancelled")]
    if not failed:
        return
    if command == "save":  # a package holds the whole list, or is not written
        print(
            "\n"
            + _(
                "not saved (no package was written; fix the cause, then rerun the same command "
                "with the whole list: finished blobs are not read again):"
            )
        )
    else:
        print(
            "\n"
            + _(
                "not done (fix the cause, then rerun with these lines; finished work is not "
                "redone):"
            )
        )
    seen = set()
    for r in failed:
        if r.line in seen:
            continue
        seen.add(r.line)
        text = (images.text_of(r.line) if images else "") or r.source
        where = (
            _("{origin}, line {line}").format(origin=images.origin, line=r.line)
            if images
            else _("image {number}").format(number=r.line)
        )
        print(f"  {text}    # {where}")


def exit_code(result: RunResult) -> int:
    if result.cancelled:
        return 130
    return 0 if result.ok else 1


def run_job(
    command: str,
    as_json: bool,
    images: ImageList | None,
    job: Callable[[EventSink, CancelToken], RunResult],
) -> int:
    """Run ``job`` with live progress; Ctrl-C stops it cleanly. Returns the exit code."""
    cancel = CancelToken()
    with Renderer.for_output(as_json) as renderer:
        try:
            result = job(renderer, cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    if as_json:
        print_json(result_json(command, result, images))
    else:
        print_result(command, result, images)
        if result.cancelled:
            print(_("stopped; rerun the same command to resume (finished work is not redone)"))
    return exit_code(result)
