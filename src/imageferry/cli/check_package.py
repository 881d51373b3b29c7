"""``imageferry check PKG_meta.yaml [--to DST]``: verify a package, list its images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.render import human_bytes
from imageferry.core.cancel import CancelToken
from imageferry.jobs.check import check_package


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    targets = inputs.choose_targets(config, args, required=False)
    report = check_package(
        config,
        Path(args.images[0]),
        targets,
        verify=args.verify,
        policy=options.retry_policy(config, args),
        cancel=CancelToken(),
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
        return 0
    meta = report.meta
    total = sum(d.size for d in meta.datafiles)
    print(
        f"{report.path.name}: {meta.kind} package, format v{meta.version}, {meta.tool}, "
        f"created {meta.created}, from {meta.source}"
    )
    if meta.base:
        print(f"  base package: {meta.base.file} (must be loaded first)")
    print(
        f"  {len(meta.datafiles)} data file(s), {human_bytes(total)}, "
        f"{len(meta.blobs)} blob(s); verified ({args.verify})"
    )
    for row in report.rows:
        state = "" if row.state is None else f"  [{row.target_name}: {row.state}]"
        print(f"  {row.name}  {row.digest[:19]}{state}")
    return 0
