"""Settings that come from cfg.yaml unless the command line says otherwise."""

from __future__ import annotations

import argparse
from pathlib import Path

from imageferry.core.config import Config
from imageferry.core.errors import InputError
from imageferry.core.manifest import Platform
from imageferry.core.retry import RetryPolicy
from imageferry.jobs.cache import cache_folder
from imageferry.jobs.options import TransferOptions


def workers(config: Config, args: argparse.Namespace) -> int:
    n = args.maxconn if args.maxconn is not None else config.maxconn
    if not 1 <= n <= 64:
        raise InputError(f"-j/--maxconn must be between 1 and 64, not {n}")
    return n


def retry_policy(config: Config, args: argparse.Namespace) -> RetryPolicy:
    n = args.retries if args.retries is not None else config.retries
    if not 0 <= n <= 20:
        raise InputError(f"--retries must be between 0 and 20, not {n}")
    return RetryPolicy(retries=n)


def cache_dir(config: Config, args: argparse.Namespace) -> Path | None:
    return cache_folder(config, Path(args.cache) if args.cache else None, args.no_cache)


def transfer(config: Config, args: argparse.Namespace) -> TransferOptions:
    """Workers, retries, platforms and cache from the command line and cfg.yaml."""
    return TransferOptions(
        workers=workers(config, args),
        policy=retry_policy(config, args),
        platforms=tuple(Platform.parse(p) for p in getattr(args, "platform", [])),
        cache=cache_dir(config, args) if hasattr(args, "cache") else None,
    )
