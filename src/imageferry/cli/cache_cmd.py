"""``imageferry cache info|prune``."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from imageferry.cli import inputs
from imageferry.cli.render import human_bytes
from imageferry.jobs.cache import cache_info, cache_prune


def run(args: argparse.Namespace) -> int:
    config = inputs.load_config(args)
    override = Path(args.cache) if args.cache else None
    if args.action == "info":
        info = cache_info(config, override)
        oldest = (
            datetime.datetime.fromtimestamp(info.oldest_use).isoformat(timespec="seconds")
            if info.oldest_use
            else None
        )
        if args.json:
            json.dump(
                {
                    "folder": str(info.root),
                    "entries": info.entries,
                    "bytes": info.bytes,
                    "oldest_use": oldest,
                },
                sys.stdout,
                indent=2,
            )
            print()
        else:
            print(
                f"cache {info.root}: {info.entries} blob(s), {human_bytes(info.bytes)}"
                + (f", least recently used {oldest}" if oldest else "")
            )
        return 0
    done = cache_prune(config, override)
    if args.json:
        json.dump(done.__dict__, sys.stdout, indent=2)
        print()
    else:
        print(
            f"removed {done.removed} blob(s), {human_bytes(done.freed)}; "
            f"kept {done.kept}, {human_bytes(done.bytes)}"
        )
    return 0
