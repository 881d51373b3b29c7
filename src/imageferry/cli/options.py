"""Settings that come from cfg.yaml unless the command line says otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.core.config import Config
from imageferry.jobs.options import TransferOptions, transfer_options


def transfer(config: Config, args: argparse.Namespace) -> TransferOptions:
    """Workers, retries, platforms and cache from the command line and cfg.yaml."""
    cache = getattr(args, "cache", None)
    return transfer_options(
        config,
        maxconn=args.maxconn,
        retries=args.retries,
        platforms=getattr(args, "platform", []),
        cache=Path(cache) if cache else None,
        no_cache=getattr(args, "no_cache", False) or not hasattr(args, "cache"),
        no_referrers=getattr(args, "no_referrers", False),
        artifact_types=getattr(args, "artifact_types", []),
    )
