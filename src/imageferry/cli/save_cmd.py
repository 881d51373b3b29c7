"""``imageferry save``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.summary import run_job
from imageferry.jobs.results import RunResult
from imageferry.jobs.save import run_save, save_options


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    images = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    opts = save_options(
        config,
        options.transfer(config, args),
        outdir=Path(args.output) if args.output else Path.cwd(),
        prefix=args.prefix,
        base=Path(args.base) if args.base else None,
        single_file=args.single_file,
        compress=args.compress,
        max_file_size="fat32" if args.fat32 else args.max_file_size,
    )
    if not images.entries:  # an empty share of a list: nothing to save, no package
        return run_job("save", args.json, images, lambda events, cancel: RunResult([], 0, 0, {}))
    return run_job(
        "save",
        args.json,
        images,
        lambda events, cancel: run_save(
            config, images.entries, source, opts, events, cancel, images.origin
        ),
    )
