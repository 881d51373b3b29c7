"""The command-line grammar: one sub-command per job, shared options defined once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from imageferry import __version__

EXIT_USAGE = 2


Sub = argparse._SubParsersAction  # the sub-command registry of the top-level parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"imageferry: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _common(p: argparse.ArgumentParser) -> None:
    add = p.add_argument
    add(
        "-c",
        "--config",
        metavar="CFG",
        help="config file (default: cfg.yaml here or beside the program)",
    )
    add(
        "-j",
        "--maxconn",
        type=int,
        metavar="N",
        help="parallel transfers (default: maxconn from cfg.yaml, else 5)",
    )
    add(
        "--retries",
        type=int,
        metavar="N",
        help="retries per request or blob (default: retries from cfg.yaml, else 2)",
    )
    add("--json", action="store_true", help="print one JSON document with the results")
    add(
        "--lang",
        choices=["zh_CN", "en_US"],
        help="language of the output (default: lang from cfg.yaml, else the system's)",
    )
    add(
        "--log",
        metavar="FILE",
        default="imageferry.log",
        help="append a log here (default: imageferry.log)",
    )


def _image_list(p: argparse.ArgumentParser, *, source: bool = True) -> None:
    p.add_argument(
        "-l",
        "--list",
        metavar="FILE",
        help="image list file, one image per line ('-' reads standard input)",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="images to work on, instead of -l")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="work on share I of N of the list (every N-th line), for N machines in parallel",
    )
    if source:
        p.add_argument(
            "--from",
            dest="source",
            metavar="SRC",
            help="source: a name from cfg.yaml or http(s)://host:port",
        )


def _targets(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--to", dest="targets", action="append", metavar="DST", help=text)


def _platform(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH",
        help="only this platform of multi-platform images; repeatable",
    )


def _referrers(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-referrers",
        action="store_true",
        help="leave signatures, SBOMs and attestations behind (default: they travel along; "
        "cfg.yaml: referrers: false)",
    )
    p.add_argument(
        "--artifact-type",
        dest="artifact_types",
        action="append",
        default=[],
        metavar="TYPE",
        help="carry only referrers of this artifact type; repeatable",
    )


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="blob cache folder (default: cache.pathname from cfg.yaml, else none)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not use the blob cache")


def _verify(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verify",
        choices=["full", "quick"],
        default="full",
        help="check data files by sha256 (full, default) or by size only (quick)",
    )


def _watch(sub: Sub[_Parser]) -> None:
    watch = sub.add_parser(
        "watch",
        help="keep targets in step with new tags of the listed repositories (监控)",
        description="Every --interval seconds, copy new tags (and tags whose digest moved) "
        "of the listed repositories: 'repo:1.2' follows tags at or above 1.2 in version "
        "order, 'repo' every tag. Ctrl-C stops it (exit 0). See docs/watch.md.",
    )
    _common(watch)
    _image_list(watch)
    _targets(watch, "target: name from cfg.yaml or URL; repeat for several")
    watch.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between rounds (default: interval from cfg.yaml, else 300)",
    )
    watch.add_argument("--once", action="store_true", help="run one round and end (for cron)")
    watch.add_argument("--tags", metavar="REGEX", help="follow only tags this regex matches")
    watch.add_argument(
        "--history",
        metavar="FILE",
        help="what was delivered (default: imageferry-watch.json beside cfg.yaml)",
    )
    _platform(watch)
    _referrers(watch)
    _cache(watch)


def _copy(sub: Sub[_Parser]) -> None:
    copy = sub.add_parser(
        "copy",
        help="copy images from a source to target registries (直传)",
        description="Stream images to every target; only what it lacks moves.",
    )
    _common(copy)
    _image_list(copy)
    _targets(copy, "target: name from cfg.yaml or URL; repeat for several")
    _platform(copy)
    _referrers(copy)
    _cache(copy)


def _save(sub: Sub[_Parser]) -> None:
    save = sub.add_parser(
        "save",
        help="save images into an offline package (下载)",
        description="Write images into package files to carry across an air gap.",
    )
    _common(save)
    _image_list(save)
    save.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="folder for the package (a dated sub-folder is made; default: here)",
    )
    save.add_argument("--prefix", metavar="P", help="file name prefix (default: outprefix, img)")
    save.add_argument(
        "--base",
        metavar="OLD_meta.yaml",
        help="incremental: leave out what this earlier package already carries",
    )
    save.add_argument(
        "--single-file",
        action="store_true",
        help="one data file, not one per -j (with a size limit: as few files as it allows)",
    )
    limit = save.add_mutually_exclusive_group()
    limit.add_argument(
        "--max-file-size",
        metavar="SIZE",
        help="no data file larger than SIZE (500M, 2G, 4GiB; M/G = 1000², 1000³); larger "
        "layers are split across files (default: maxfilesize from cfg.yaml, else none)",
    )
    limit.add_argument(
        "--fat32",
        action="store_true",
        help="same as --max-file-size fat32: every file under 4 GiB, for FAT32 USB sticks",
    )
    save.add_argument(
        "--compress",
        choices=["none", "zstd"],
        help="compress data files (default: compressor from cfg.yaml, else none)",
    )
    _platform(save)
    _referrers(save)
    _cache(save)


def _load(sub: Sub[_Parser]) -> None:
    load = sub.add_parser(
        "load",
        help="push an offline package into target registries (上传)",
        description="Verify a package, then push its images into the target.",
    )
    load.add_argument("package", metavar="PKG_meta.yaml", help="the package's meta file")
    _common(load)
    load.add_argument(
        "-l", "--list", metavar="FILE", help="load only these images (lines may rename with ->)"
    )
    _targets(load, "target: name from cfg.yaml or URL; repeat for several")
    _verify(load)
    _referrers(load)


def _check(sub: Sub[_Parser]) -> None:
    check = sub.add_parser(
        "check",
        help="check an image list or a package (校验)",
        description="Resolve every line and look it up in the source (and "
        "targets), or verify a package: imageferry check PKG_meta.yaml",
    )
    _common(check)
    _image_list(check)
    _targets(check, "also say whether this target has each image")
    _platform(check)
    _verify(check)


def _cache_command(sub: Sub[_Parser]) -> None:
    cache = sub.add_parser(
        "cache",
        help="show or trim the local blob cache",
        description="info: size and age of the cache; prune: apply keepdays "
        "and keepsize now (runs also do it before and after).",
    )
    cache.add_argument("action", choices=["info", "prune"])
    cache.add_argument("-c", "--config", metavar="CFG", help="config file")
    cache.add_argument("--cache", metavar="DIR", help="cache folder (default: from cfg.yaml)")
    cache.add_argument("--json", action="store_true", help="print JSON")
    cache.add_argument("--log", metavar="FILE", default="imageferry.log", help="log file")


def _gui(sub: Sub[_Parser]) -> None:
    gui = sub.add_parser("gui", help="open the window (窗口)")
    gui.add_argument("-c", "--config", metavar="CFG", help="config file")
    gui.add_argument("--lang", choices=["zh_CN", "en_US"], help="window language")


COMMANDS: dict[str, Callable[[Sub[_Parser]], None]] = {
    "copy": _copy,
    "save": _save,
    "load": _load,
    "check": _check,
    "watch": _watch,
    "cache": _cache_command,
    "gui": _gui,
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The grammar; for ``argv`` that starts with a command, only that command's part
    (building all seven costs more than a rerun's planning takes; the answers are the same)."""
    parser = _Parser(
        prog="imageferry",
        description="Move container images between registries without Docker.",
        epilog="Exit codes: 0 all images done, 1 some failed, 2 bad input, 130 stopped.",
    )
    parser.add_argument("--version", action="version", version=f"imageferry {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    first = argv[0] if argv else None
    for name, add in COMMANDS.items():
        if first not in COMMANDS or first == name:
            add(sub)
    return parser
