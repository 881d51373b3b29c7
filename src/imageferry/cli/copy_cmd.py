"""``imageferry copy``."""

from __future__ import annotations

import argparse

from imageferry.cli import inputs, options
from imageferry.cli.summary import run_job
from imageferry.jobs.copy import run_copy


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    images = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = options.transfer(config, args)
    return run_job(
        "copy",
        args.json,
        images,
        lambda events, cancel: run_copy(
            config, images.entries, source, targets, opts, events, cancel, images.origin
        ),
    )
