"""``imageferry copy``."""

from __future__ import annotations

import argparse
import json
import sys

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer, human_bytes
from imageferry.core.cancel import CancelToken
from imageferry.core.manifest import Platform
from imageferry.jobs.copy import CopyOptions, RunResult, run_copy


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    entries, origin = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = CopyOptions(
        workers=options.workers(config, args),
        policy=options.retry_policy(config, args),
        platforms=tuple(Platform.parse(p) for p in args.platform),
    )
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        try:
            result = run_copy(config, entries, source, targets, opts, renderer, cancel, origin)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        print_result(result, renderer, args.json)
    if result.cancelled:
        return 130
    return 0 if result.ok else 1


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
        f"done in {result.seconds:.1f}s: images {counts or 'none'}; blobs {blobs}; "
        f"{human_bytes(result.bytes_read)} read ({human_bytes(speed)}/s)"
    )
    print(summary, file=sys.stderr if renderer.mode == "rich" else sys.stdout)
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
