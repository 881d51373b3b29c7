"""``imageferry save``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.cli.summary import exit_code, print_result
from imageferry.core.cancel import CancelToken
from imageferry.core.errors import InputError
from imageferry.core.manifest import Platform
from imageferry.jobs.save import SaveOptions, run_save


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    entries, origin = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    base = Path(args.base) if args.base else None
    if base is not None and not base.is_file():
        raise InputError(f"--base {base}: no such meta file (give the *_meta.yaml of a package)")
    compression = args.compress or config.compressor or "none"
    opts = SaveOptions(
        outdir=Path(args.output) if args.output else Path.cwd(),
        prefix=args.prefix or config.outprefix,
        base=base,
        single_file=args.single_file or config.singlefile,
        compression=compression,
        workers=options.workers(config, args),
        policy=options.retry_policy(config, args),
        platforms=tuple(Platform.parse(p) for p in args.platform),
        cache=options.cache_dir(config, args),
    )
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        try:
            result = run_save(config, entries, source, opts, renderer, cancel, origin)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        print_result(result, renderer, args.json)
    return exit_code(result)
