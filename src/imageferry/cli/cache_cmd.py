"""``imageferry cache info|prune``."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from imageferry.cli import inputs
from imageferry.cli.render import human_bytes
from imageferry.i18n import _
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
            text = _("cache {folder}: {count} blob(s), {size}").format(
                folder=info.root, count=info.entries, size=human_bytes(info.bytes)
            )
            if oldest:
                text += _(", least recently used {when}").format(when=oldest)
            print(text)
        return 0
    done = cache_prune(config, override)
    if args.json:
        json.dump(done.__dict__, sys.stdout, indent=2)
        print()
    else:
        print(
            _("removed {removed} blob(s), {freed}; kept {kept}, {size}").format(
                removed=done.removed,
                freed=human_bytes(done.freed),
                kept=done.kept,
                size=human_bytes(done.bytes),
            )
        )
    return 0
