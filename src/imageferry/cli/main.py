"""``imageferry``: the parser, and the one place errors become messages and exit codes."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

from imageferry import __version__
from imageferry.cli.parser import EXIT_USAGE, build_parser
from imageferry.core.errors import (
    Cancelled,
    ConfigError,
    ImageFerryError,
    InputError,
    PackageError,
)

EXIT_FAILED, EXIT_CANCELLED = 1, 130
log = logging.getLogger("imageferry")


def _setup_logging(path: str) -> None:
    root = logging.getLogger("imageferry")
    root.setLevel(logging.INFO)
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        print(f"imageferry: warning: cannot write log file {path}: {exc.strerror}", file=sys.stderr)
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root.addHandler(handler)


def _command(args: argparse.Namespace) -> ModuleType:
    """The module that runs ``args.command`` (imported late: start-up stays quick)."""
    if args.command == "check" and _is_package(args):
        return importlib.import_module("imageferry.cli.check_package")
    return importlib.import_module(f"imageferry.cli.{args.command}_cmd")


def _is_package(args: argparse.Namespace) -> bool:
    return not args.list and len(args.images) == 1 and args.images[0].endswith((".yaml", ".yml"))


def main(argv: list[str] | None = None) -> int:
    # pydantic scans every installed package for plugins when it starts; we use none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args.log)
    log.info("imageferry %s: %s", __version__, args.command)
    try:
        return _command(args).run(args)
    except (ConfigError, InputError, PackageError) as exc:
        print(f"imageferry: {exc}", file=sys.stderr)
        log.error("%s", exc)
        return EXIT_USAGE
    except Cancelled:
        print("imageferry: stopped; rerun the same command to resume", file=sys.stderr)
        return EXIT_CANCELLED
    except ImageFerryError as exc:
        print(f"imageferry: {exc}", file=sys.stderr)
        log.error("%s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("imageferry: stopped", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception:  # a bug: keep the details in the log, not on the user's screen
        log.error("internal error\n%s", traceback.format_exc())
        print(
            f"imageferry: internal error; details are in {Path(args.log).resolve()}. "
            "Please report it with that file.",
            file=sys.stderr,
        )
        return EXIT_FAILED
