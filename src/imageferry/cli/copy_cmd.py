"""``imageferry copy``."""

from __future__ import annotations

import argparse

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.cli.summary import exit_code, print_result
from imageferry.core.cancel import CancelToken
from imageferry.core.manifest import Platform
from imageferry.jobs.copy import CopyOptions, run_copy


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    entries, origin = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = CopyOptions(
        workers=options.workers(config, args),
        policy=options.retry_policy(config, args),
        platforms=tuple(Platform.parse(p) for p in args.platform),
        cache=options.cache_dir(config, args),
    )
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        try:
            result = run_copy(config, entries, source, targets, opts, renderer, cancel, origin)
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        print_result(result, renderer, args.json)
    return exit_code(result)
