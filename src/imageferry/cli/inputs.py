"""What every command reads first, from argv: the config, the image list, the registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imageferry.core.config import Config, RegistryConfig, find_config
from imageferry.core.errors import InputError
from imageferry.core.textfile import decode_text, read_text_file
from imageferry.i18n import set_language
from imageferry.jobs import inputs
from imageferry.jobs.inputs import ImageList


def load_config(args: argparse.Namespace) -> Config:
    config = find_config(Path(args.config) if args.config else None)
    if not getattr(args, "lang", None) and config.lang:
        set_language(config.lang)  # --lang, else cfg.yaml's lang, else the system's
    return config


def _stdin_is_piped() -> bool:
    return sys.stdin is not None and not sys.stdin.isatty()


def read_image_list(args: argparse.Namespace) -> ImageList:
    """Entries from ``-l FILE`` (``-`` for stdin), image arguments, or piped stdin."""
    if args.list and args.images:
        raise InputError("give images either with -l FILE or as arguments, not both")
    if args.list == "-" or (not args.list and not args.images and _stdin_is_piped()):
        if sys.stdin is None:
            raise InputError("-l -: there is no standard input to read the list from")
        text, origin = decode_text(sys.stdin.buffer.read(), "standard input"), "standard input"
    elif args.list:
        text, origin = read_text_file(Path(args.list)), str(args.list)
    elif args.images:
        text, origin = "\n".join(args.images), "arguments"
    else:
        raise InputError(
            "no images given: use -l FILE (one image per line, # for comments), "
            "list images as arguments, or pipe a list in"
        )
    return inputs.parse_list(text, origin, getattr(args, "shard", None))


def choose_source(config: Config, args: argparse.Namespace) -> RegistryConfig:
    return inputs.choose_source(config, args.source)


def choose_targets(
    config: Config, args: argparse.Namespace, required: bool
) -> list[RegistryConfig]:
    return inputs.choose_targets(config, args.targets, required)
