"""``imageferry check``: every line resolved, looked up in the source and the targets."""

from __future__ import annotations

import argparse

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.cli.summary import print_json
from imageferry.core.cancel import CancelToken
from imageferry.core.events import ImageChecked
from imageferry.i18n import _
from imageferry.jobs.check import CheckReport, run_check


def _state(name: str, error: str | None) -> str:
    words = {
        "same": _("has it (same digest)"),
        "differs": _("has a different image"),
        "missing": _("does not have it"),
    }
    return words.get(name) or _("CANNOT CHECK: {error}").format(error=error)


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
            status = _("found {digest}").format(digest=r.digest[:19])
        elif r.missing:
            status = _("MISSING ({error})").format(error=r.error)
        else:
            status = _("CANNOT CHECK: {error}").format(error=r.error)
        print(_("line {line}: {source}").format(line=r.line, source=r.source) + f"  {status}")
        if r.referrers:
            print("    " + _("referrers: {kinds}").format(kinds=", ".join(r.referrers)))
        for t in r.targets:
            print(f"    -> {t.ref}  [{t.target_name}: {_state(t.state, t.error)}]")
    rows = report.rows
    missing = sum(1 for r in rows if r.missing)
    unknown = sum(1 for r in rows if not r.exists and not r.missing)
    states = [t.state for r in rows for t in r.targets]
    found = len(rows) - missing - unknown
    parts = [
        _("{count} image(s), {found} found, {missing} missing").format(
            count=len(rows), found=found, missing=missing
        )
    ]
    if unknown:
        parts.append(_(", {count} could not be checked").format(count=unknown))
    if states:
        parts.append(_("; on the target(s): {count} same").format(count=states.count("same")))
    for state, text in (
        ("missing", _(", {count} not there")),
        ("differs", _(", {count} different")),
        ("error", _(", {count} target lookup(s) failed")),
    ):
        if state in states:
            parts.append(text.format(count=states.count(state)))
    print("".join(parts))
