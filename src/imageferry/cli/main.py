"""``imageferry``: the parser, and the one place errors become messages and exit codes."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from imageferry import __version__
from imageferry.cli.parser import EXIT_USAGE, build_parser
from imageferry.core.errors import (
    Cancelled,
    ConfigError,
    ImageFerryError,
    InputError,
    PackageError,
)
from imageferry.i18n import set_language

EXIT_FAILED, EXIT_CANCELLED, EXIT_PIPE = 1, 130, 141
log = logging.getLogger("imageferry")
_froze = False  # the first command's import was frozen (see _importing)


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


@contextmanager
def _importing() -> Iterator[None]:
    """Importing a command makes some 100,000 lasting objects and no garbage: the cyclic
    collector is off meanwhile, and what was made is frozen (never scanned again), so its
    passes over them do not cost a twentieth of a rerun with nothing to do. Only the first
    import of a process is frozen (a caller of ``main`` in a loop freezes nothing more)."""
    global _froze
    if _froze:
        yield
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        _froze = True
        if collecting:
            gc.enable()


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace], int]:
    """The ``run`` of ``args.command``, imported late so that start-up stays quick.

    Each import is written out so that PyInstaller sees it (a module imported by a name
    built at run time would be missing from the frozen program).
    """
    name = args.command
    if name == "copy":
        from imageferry.cli import copy_cmd

        return copy_cmd.run
    if name == "save":
        from imageferry.cli import save_cmd

        return save_cmd.run
    if name == "load":
        from imageferry.cli import load_cmd

        return load_cmd.run
    if name == "check" and _is_package(args):
        from imageferry.cli import check_package

        return check_package.run
    if name == "check":
        from imageferry.cli import check_cmd

        return check_cmd.run
    if name == "cache":
        from imageferry.cli import cache_cmd

        return cache_cmd.run
    if name == "watch":
        from imageferry.cli import watch_cmd

        return watch_cmd.run
    # a command added without a branch here still runs (the build collects every module)
    run: Callable[[argparse.Namespace], int] = importlib.import_module(
        f"imageferry.cli.{name}_cmd"
    ).run
    return run


def _is_package(args: argparse.Namespace) -> bool:
    """``check PATH``: a package when PATH is a meta file, or any file or folder that exists."""
    if args.list or len(args.images) != 1:
        return False
    arg = args.images[0]
    return arg.endswith((".yaml", ".yml")) or Path(arg).exists()


def _fail(args: argparse.Namespace, code: int, text: str) -> int:
    """Say what went wrong: on stderr, in the log, and as a JSON object with --json."""
    print(f"imageferry: {text}", file=sys.stderr)
    log.error("%s", text)
    if getattr(args, "json", False):
        doc = {"command": args.command, "ok": False, "error": text, "exit_code": code}
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return code


def _closed_pipe() -> int:
    """The reader of our output went away (``imageferry check | head -1``): end quietly."""
    log.info("output pipe closed by the reader")
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # flushing at exit must not fail again
    except (OSError, AttributeError, ValueError):
        pass
    return EXIT_PIPE


def _lang(args: argparse.Namespace) -> list[str]:
    return ["--lang", args.lang] if args.lang else []


def _unbreakable_output() -> None:
    """Output redirected on Windows is in the ANSI code page, which cannot hold every name:
    write UTF-8 to files and pipes, and never fail on a character a console cannot show."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            if stream.isatty():
                reconfigure(errors="backslashreplace")
            else:
                reconfigure(encoding="utf-8", errors="backslashreplace")
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    _unbreakable_output()
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words)
    args = parser.parse_args(words)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command == "gui":  # the window is a front end beside the CLI, loaded only here
        with _importing():
            window = importlib.import_module("imageferry.gui")
        return int(window.main([*(["-c", args.config] if args.config else []), *_lang(args)]))
    set_language(getattr(args, "lang", None))  # cfg.yaml's lang applies once it is read
    _setup_logging(args.log)
    log.info("imageferry %s: %s", __version__, args.command)
    try:
        with _importing():
            run = _command(args)
        return run(args)
    except BrokenPipeError:
        return _closed_pipe()
    except (ConfigError, InputError, PackageError) as exc:
        return _fail(args, EXIT_USAGE, str(exc))
    except Cancelled:
        return _fail(args, EXIT_CANCELLED, "stopped; rerun the same command to resume")
    except ImageFerryError as exc:
        return _fail(args, EXIT_FAILED, str(exc))
    except KeyboardInterrupt:
        return _fail(args, EXIT_CANCELLED, "stopped; rerun the same command to resume")
    except Exception:  # a bug: keep the details in the log, not on the user's screen
        log.error("internal error\n%s", traceback.format_exc())
        print(
            f"imageferry: internal error; details are in {Path(args.log).resolve()}. "
            "Please report it with that file.",
            file=sys.stderr,
        )
        return EXIT_FAILED
