"""``imageferry load``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.summary import run_job
from imageferry.jobs.inputs import ImageList
from imageferry.jobs.load import LoadOptions, package_path, run_load


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    meta = package_path(Path(args.package))
    subset: ImageList | None = None
    if args.list:
        args.images = []
        subset = inputs.read_image_list(args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = LoadOptions(transfer=options.transfer(config, args), verify=args.verify)
    return run_job(
        "load",
        args.json,
        subset,
        lambda events, cancel: run_load(
            config,
            meta,
            targets,
            subset.entries if subset else None,
            opts,
            events,
            cancel,
            subset.origin if subset else "package",
        ),
    )
