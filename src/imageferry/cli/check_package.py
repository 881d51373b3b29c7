"""``imageferry check PKG_meta.yaml [--to DST]``: verify a package, list its images."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer, human_bytes
from imageferry.cli.summary import print_json
from imageferry.core.cancel import CancelToken
from imageferry.i18n import _
from imageferry.jobs.check import PackageReport, check_package
from imageferry.jobs.load import package_path


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    targets = inputs.choose_targets(config, args, required=False)
    opts = options.transfer(config, args)
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        try:
            report = check_package(
                config,
                package_path(Path(args.images[0])),
                targets,
                verify=args.verify,
                policy=opts.policy,
                cancel=cancel,
                events=renderer,
                workers=min(opts.workers, 4),
            )
        except KeyboardInterrupt:
            cancel.cancel()
            raise
    if args.json:
        print_json({"command": "check", **report.to_json()})
    else:
        _print(report, args.verify)
    if report.cancelled:
        return 130
    return 0 if report.ok else 1


def _print(report: PackageReport, verify: str) -> None:
    meta = report.meta
    total = sum(d.size for d in meta.datafiles)
    kind = _("incremental") if meta.kind == "incremental" else _("full")
    print(
        _(
            "{name}: {kind} package, format v{version}, {tool}, created {created}, from {source}"
        ).format(
            name=report.path.name,
            kind=kind,
            version=meta.version,
            tool=meta.tool,
            created=meta.created,
            source=meta.source,
        )
    )
    if meta.base:
        print("  " + _("base package: {file} (must be loaded first)").format(file=meta.base.file))
    print(
        "  "
        + _("{files} data file(s), {size}, {blobs} blob(s); verified ({how})").format(
            files=len(meta.datafiles),
            size=human_bytes(total),
            blobs=len(meta.blobs),
            how=verify,
        )
    )
    kinds = sorted(set(report.containers.values()))
    if report.meta.tool == "image-transmit" or (kinds and kinds != ["tar"]):
        found = ", ".join(f"{name}: {kind}" for name, kind in sorted(report.containers.items()))
        print("  " + _("data files: {found}").format(found=found))
    for row in report.rows:
        state = "" if row.state is None else f"  [{row.target_name}: {row.state}]"
        if row.error:
            state += f" {row.error}"
        print(f"  {row.name}  {row.digest[:19]}{state}")
        if row.referrers:
            print("    " + _("referrers: {kinds}").format(kinds=", ".join(row.referrers)))
