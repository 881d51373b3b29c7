"""``imageferry check``."""

from __future__ import annotations

import argparse
import json
import sys

from imageferry.cli import inputs, options
from imageferry.core.cancel import CancelToken
from imageferry.jobs.check import run_check


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    entries, origin = inputs.read_image_list(args)
    source = inputs.choose_source(config, args)
    targets = inputs.choose_targets(config, args, required=False)
    rows = run_check(
        config,
        entries,
        source,
        targets,
        policy=options.retry_policy(config, args),
        cancel=CancelToken(),
        workers=options.workers(config, args),
        origin=origin,
    )
    if args.json:
        json.dump(
            [{**r.__dict__, "targets": [t.__dict__ for t in r.targets]} for r in rows],
            sys.stdout,
            indent=2,
        )
        print()
    else:
        for r in rows:
            status = f"found {r.digest[:19]}" if r.digest else f"MISSING ({r.error})"
            print(f"line {r.line}: {r.source}  {status}")
            for t in r.targets:
                state = {
                    "same": "has it (same digest)",
                    "differs": "has a different image",
                    "missing": "does not have it",
                }.get(t.state, f"error: {t.error}")
                print(f"    -> {t.ref}  [{t.target_name}: {state}]")
        missing = sum(1 for r in rows if not r.exists)
        print(f"{len(rows)} image(s), {len(rows) - missing} found, {missing} missing")
    return 0 if all(r.exists for r in rows) else 1
