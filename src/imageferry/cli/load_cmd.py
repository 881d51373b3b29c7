"""``imageferry load``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.summary import run_job
from imageferry.jobs.load import LoadOptions, run_load


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    subset, origin = None, "package"
    if args.list:
        args.images = []
        subset, origin = inputs.read_image_list(args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = LoadOptions(transfer=options.transfer(config, args), verify=args.verify)
    meta = Path(args.package)
    return run_job(
        args.json,
        lambda events, cancel: run_load(
            config, meta, targets, subset, opts, events, cancel, origin
        ),
    )
