"""``imageferry load``."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.cli import inputs, options
from imageferry.cli.render import Renderer
from imageferry.cli.summary import exit_code, print_result
from imageferry.core.cancel import CancelToken
from imageferry.jobs.load import LoadOptions, run_load


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    subset, origin = (None, "package")
    if args.list:
        args.images = []
        subset, origin = inputs.read_image_list(args)
    targets = inputs.choose_targets(config, args, required=True)
    opts = LoadOptions(
        workers=options.workers(config, args),
        policy=options.retry_policy(config, args),
        verify=args.verify,
    )
    cancel = CancelToken()
    with Renderer.for_output(args.json) as renderer:
        try:
            result = run_load(
                config, Path(args.package), targets, subset, opts, renderer, cancel, origin
            )
        except KeyboardInterrupt:
            cancel.cancel()
            raise
        print_result(result, renderer, args.json)
    return exit_code(result)
