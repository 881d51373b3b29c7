"""What every command reads first: the config, the image list, the chosen registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imageferry.core.config import Config, RegistryConfig, find_config
from imageferry.core.errors import ConfigError, InputError
from imageferry.core.imagelist import ListEntry, parse_image_list, parse_shard, shard


def load_config(args: argparse.Namespace) -> Config:
    return find_config(Path(args.config) if args.config else None)


def read_image_list(args: argparse.Namespace) -> tuple[list[ListEntry], str]:
    """Entries from ``-l FILE`` (``-`` for stdin), image arguments, or piped stdin."""
    if args.list and args.images:
        raise InputError("give images either with -l FILE or as arguments, not both")
    if args.list == "-" or (not args.list and not args.images and not sys.stdin.isatty()):
        text, origin = sys.stdin.read(), "standard input"
    elif args.list:
        path = Path(args.list)
        try:
            text, origin = path.read_text(encoding="utf-8-sig"), str(path)
        except OSError as exc:
            raise InputError(f"cannot read image list {path}: {exc.strerror}") from None
    else:
        text, origin = "\n".join(args.images), "arguments"
    entries = parse_image_list(text, origin)
    if getattr(args, "shard", None):
        i, n = parse_shard(args.shard)
        entries = shard(entries, i, n)
        origin = f"{origin} (share {i} of {n})"
    if not entries:
        raise InputError(
            f"no images in {origin}: give -l FILE (one image per line, # for comments), "
            "list images as arguments, or pipe a list in"
        )
    return entries, origin


def choose_source(config: Config, args: argparse.Namespace) -> RegistryConfig:
    return config.find("source", args.source)


def choose_targets(
    config: Config, args: argparse.Namespace, required: bool
) -> list[RegistryConfig]:
    if not args.targets:
        if not required:
            return []
        if len(config.target) == 1:
            return [config.target[0]]
        raise ConfigError(
            "choose a target with --to NAME or --to http://host:port (configured: "
            + (", ".join(t.display_name for t in config.target) or "none")
            + ")"
        )
    return [config.find("target", t) for t in args.targets]
