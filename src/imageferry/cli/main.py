"""``imageferry``: the parser, and the one place errors become messages and exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from imageferry import __version__
from imageferry.core.errors import Cancelled, ConfigError, ImageFerryError, InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
log = logging.getLogger("imageferry")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"imageferry: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _common(p: argparse.ArgumentParser, *, images: bool = True) -> None:
    p.add_argument(
        "-c",
        "--config",
        metavar="CFG",
        help="config file (default: cfg.yaml here or beside the program)",
    )
    if images:
        p.add_argument(
            "-l",
            "--list",
            metavar="FILE",
            help="image list file, one image per line ('-' reads standard input)",
        )
        p.add_argument(
            "images", nargs="*", metavar="IMAGE", help="images to work on, instead of -l"
        )
        p.add_argument(
            "--from",
            dest="source",
            metavar="SRC",
            help="source: a name from cfg.yaml or http(s)://host:port",
        )
    p.add_argument(
        "-j",
        "--maxconn",
        type=int,
        metavar="N",
        help="parallel transfers (default: maxconn from cfg.yaml, else 5)",
    )
    p.add_argument(
        "--retries",
        type=int,
        metavar="N",
        help="retries per request or blob (default: retries from cfg.yaml, else 2)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON document with the results, for scripts"
    )
    p.add_argument(
        "--log",
        metavar="FILE",
        default="imageferry.log",
        help="append a log here (default: imageferry.log)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imageferry",
        description="Move container images between registries without Docker.",
        epilog="Exit codes: 0 all images done, 1 some failed, 2 bad input, 130 stopped.",
    )
    parser.add_argument("--version", action="version", version=f"imageferry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    copy = sub.add_parser(
        "copy",
        help="copy images straight from a source to target registries (直传)",
        description="Stream images from the source to every target; only what it lacks moves.",
    )
    _common(copy)
    copy.add_argument(
        "--to",
        dest="targets",
        action="append",
        metavar="DST",
        help="target: name from cfg.yaml or URL; repeat for several",
    )
    copy.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH",
        help="copy only this platform of multi-platform images; repeatable",
    )
    check = sub.add_parser(
        "check",
        help="show what each line resolves to and whether it exists (校验)",
        description="Resolve every line and look it up in the source (and targets).",
    )
    _common(check)
    check.add_argument(
        "--to",
        dest="targets",
        action="append",
        metavar="DST",
        help="also say whether this target has each image",
    )
    return parser


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _setup_logging(args.log)
    log.info("imageferry %s: %s", __version__, args.command)
    try:
        if args.command == "copy":
            from imageferry.cli.copy_cmd import run
        else:
            from imageferry.cli.check_cmd import run
        return run(args)
    except (ConfigError, InputError) as exc:
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
