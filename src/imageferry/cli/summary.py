"""The end of a run: a summary line, what is not done, and --json output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from imageferry.cli.render import Renderer, human_bytes
from imageferry.core.cancel import CancelToken
from imageferry.core.events import EventSink
from imageferry.jobs.results import RunResult


def print_result(result: RunResult, renderer: Renderer, as_json: bool) -> None:
    if as_json:
        doc = {
            "ok": result.ok,
            "cancelled": result.cancelled,
            "seconds": round(result.seconds, 3),
            "bytes_read": result.bytes_read,
            "blobs": result.blobs,
            "images": [r.__dict__ for r in result.images],
        }
        if result.package:
            doc["package"] = str(result.package)
            doc["files"] = [{"name": n, "size": size} for n, size in result.files]
        json.dump(doc, sys.stdout, indent=2)
        print()
        return
    counts = ", ".join(
        f"{result.count(s)} {s}"
        for s in ("copied", "skipped", "failed", "cancelled")
        if result.count(s)
    )
    blobs = ", ".join(f"{n} {k}" for k, n in result.blobs.items() if n) or "none"
    speed = result.bytes_read / max(result.seconds, 1e-6)
    summary = (
        f"done in {result.seconds:.1f}s. images: {counts or 'none'}; blobs: {blobs}; "
        f"{human_bytes(result.bytes_read)} read ({human_bytes(speed)}/s)"
    )
    print(summary)
    if result.package:
        print(f"package: {result.package}")
        for name, size in result.files:
            print(f"  {name}  {human_bytes(size)}")
    failed = [r for r in result.images if r.status in ("failed", "cancelled")]
    if failed:
        print(
            "\nnot done (fix the cause, then rerun with these lines; finished work is not redone):"
        )
        seen = set()
        for r in failed:
            if r.line not in seen:
                seen.add(r.line)
                print(f"  {r.source}")


def exit_code(result: RunResult) -> int:
    if result.cancelled:
        return 130
    return 0 if result.ok else 1


def run_job(as_json: bool, job: Callable[[EventSink, CancelToken], RunResult]) -> int:
    """Run ``job`` with live progress; Ctrl-C stops it cleanly. Returns the exit code."""
    cancel = CancelToken()
    with Renderer.for_output(as_json) as renderer:
        try:
            result = job(renderer, cancel)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    print_result(result, renderer, as_json)
    return exit_code(result)
