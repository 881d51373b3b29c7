"""``imageferry check``: every line resolved, looked up in the source and the targets."""

from __future__ import annotations

import argparse

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.cli.summary import print_json
from imageferry.core.cancel import CancelToken
from imageferry.core.events import ImageChecked
from imageferry.jobs.check import CheckReport, run_check

_STATE = {
    "same": "has it (same digest)",
    "differs": "has a different image",
    "missing": "does not have it",
}


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    images = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=False)
    opts = options.transfer(config, args)
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        renderer.progress.expect_images(len(images.entries))
        try:
            report = run_check(
                config,
                images.entries,
                source,
                targets,
                opts,
                renderer,
                cancel,
                images.origin,
            )
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    if args.json:
        print_json(
            {
                "command": "check",
                "ok": report.ok,
                "cancelled": report.cancelled,
                "images": [_row_json(r) for r in report.rows],
            }
        )
    else:
        _print(report)
    if report.cancelled:
        return 130
    return 0 if report.ok else 1


def _row_json(r: ImageChecked) -> dict:
    return {**r.__dict__, "ok": r.ok, "targets": [t.__dict__ for t in r.targets]}


def _print(report: CheckReport) -> None:
    for r in report.rows:
        if r.digest:
            status = f"found {r.digest[:19]}"
        elif r.missing:
            status = f"MISSING ({r.error})"
        else:
            status = f"CANNOT CHECK: {r.error}"
        print(f"line {r.line}: {r.source}  {status}")
        if r.referrers:
            print(f"    referrers: {', '.join(r.referrers)}")
        for t in r.targets:
            state = _STATE.get(t.state, f"CANNOT CHECK: {t.error}")
            print(f"    -> {t.ref}  [{t.target_name}: {state}]")
    rows = report.rows
    missing = sum(1 for r in rows if r.missing)
    unknown = sum(1 for r in rows if not r.exists and not r.missing)
    states = [t.state for r in rows for t in r.targets]
    print(
        f"{len(rows)} image(s), {len(rows) - missing - unknown} found, {missing} missing"
        + (f", {unknown} could not be checked" if unknown else "")
        + (f"; on the target(s): {states.count('same')} same" if states else "")
        + (f", {states.count('missing')} not there" if "missing" in states else "")
        + (f", {states.count('differs')} different" if "differs" in states else "")
        + (f", {states.count('error')} target lookup(s) failed" if "error" in states else "")
    )
