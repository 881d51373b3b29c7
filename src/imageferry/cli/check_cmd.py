"""``imageferry check``."""

from __future__ import annotations

import argparse
import json
import sys

from imageferry.cli import inputs, options
from imageferry.core.cancel import CancelToken
from imageferry.jobs.check import NOT_FOUND, run_check


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
            if r.digest:
                status = f"found {r.digest[:19]}"
            elif r.error == NOT_FOUND:
                status = f"MISSING ({r.error})"
            else:
                status = f"CANNOT CHECK: {r.error}"
            print(f"line {r.line}: {r.source}  {status}")
            for t in r.targets:
                state = {
                    "same": "has it (same digest)",
                    "differs": "has a different image",
                    "missing": "does not have it",
                }.get(t.state, f"error: {t.error}")
                print(f"    -> {t.ref}  [{t.target_name}: {state}]")
        missing = sum(1 for r in rows if r.error == NOT_FOUND)
        unknown = sum(1 for r in rows if not r.exists and r.error != NOT_FOUND)
        print(
            f"{len(rows)} image(s), {len(rows) - missing - unknown} found, {missing} missing"
            + (f", {unknown} could not be checked" if unknown else "")
        )
    return 0 if all(r.exists for r in rows) else 1
