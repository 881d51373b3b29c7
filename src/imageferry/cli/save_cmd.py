"""``imageferry save``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.summary import run_job
from imageferry.core.errors import InputError
from imageferry.jobs.save import SaveOptions, run_save


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    entries, origin = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    base = Path(args.base) if args.base else None
    if base is not None and not base.is_file():
        raise InputError(f"--base {base}: no such meta file (give the *_meta.yaml of a package)")
    opts = SaveOptions(
        outdir=Path(args.output) if args.output else Path.cwd(),
        prefix=args.prefix or config.outprefix,
        base=base,
        single_file=args.single_file or config.singlefile,
        compression=args.compress or config.compressor or "none",
        transfer=options.transfer(config, args),
    )
    return run_job(
        args.json,
        lambda events, cancel: run_save(config, entries, source, opts, events, cancel, origin),
    )
