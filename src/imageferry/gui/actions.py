"""Jobs built from what the window shows: the list, the pickers, the options.

Only glue: every rule (defaults, validation, how a job runs) is in
``imageferry.jobs``; this module turns widget values into its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import ConfigError
from imageferry.i18n import _
from imageferry.jobs.check import CheckReport, PackageReport, check_package, run_check
from imageferry.jobs.copy import run_copy
from imageferry.jobs.inputs import ImageList, choose_source, choose_targets
from imageferry.jobs.load import LoadOptions, package_path, run_load
from imageferry.jobs.options import TransferOptions, transfer_options
from imageferry.jobs.results import RunResult
from imageferry.jobs.runner import BackgroundJob
from imageferry.jobs.save import run_save, save_options
from imageferry.jobs.watch import WatchResult, WatchSettings, check_watch_lines, run_watch
from imageferry.jobs.watch_history import default_history_path


@dataclass(frozen=True)
class Choices:
    """The top row of the window."""

    source: str | None
    targets: tuple[str, ...]
    maxconn: int
    retries: int
    incremental: bool = False
    single_file: bool = False
    cache: bool = True
    max_file_size: str = "none"  # "none", "fat32" or a size like "2G" (see jobs.save)
    save_folder: Path | None = None


def _source(config: Config, choices: Choices) -> RegistryConfig:
    return choose_source(config, choices.source or None)


def _targets(config: Config, choices: Choices, required: bool) -> list[RegistryConfig]:
    if required and not choices.targets:
        raise ConfigError("choose a target registry first")
    return choose_targets(config, list(choices.targets), required)


def _options(config: Config, choices: Choices) -> TransferOptions:
    return transfer_options(
        config, maxconn=choices.maxconn, retries=choices.retries, no_cache=not choices.cache
    )


def check_job(config: Config, images: ImageList, choices: Choices) -> BackgroundJob[CheckReport]:
    source, targets = _source(config, choices), _targets(config, choices, False)
    opts = _options(config, choices)
    job = BackgroundJob(
        "check",
        lambda events, cancel: run_check(
            config, images.entries, source, targets, opts, events, cancel, images.origin
        ),
    )
    job.progress.expect_images(len(images.entries))
    return job


def copy_job(config: Config, images: ImageList, choices: Choices) -> BackgroundJob[RunResult]:
    source, targets = _source(config, choices), _targets(config, choices, True)
    opts = _options(config, choices)
    return BackgroundJob(
        "copy",
        lambda events, cancel: run_copy(
            config, images.entries, source, targets, opts, events, cancel, images.origin
        ),
    )


def watch_job(config: Config, images: ImageList, choices: Choices) -> BackgroundJob[WatchResult]:
    """监控: rounds every cfg.yaml ``interval`` seconds until stopped (history beside cfg.yaml)."""
    source, targets = _source(config, choices), _targets(config, choices, True)
    check_watch_lines(images.entries, images.origin)
    opts = _options(config, choices)
    settings = WatchSettings(interval=config.interval, history=default_history_path(config))
    return BackgroundJob(
        "watch",
        lambda events, cancel: run_watch(
            config, images.entries, source, targets, opts, settings, events, cancel, images.origin
        ),
    )


def save_job(
    config: Config, images: ImageList, choices: Choices, base: Path | None
) -> BackgroundJob[RunResult]:
    source = _source(config, choices)
    opts = save_options(
        config,
        _options(config, choices),
        outdir=choices.save_folder,
        base=base,
        single_file=choices.single_file,
        max_file_size=choices.max_file_size,
    )
    return BackgroundJob(
        "save",
        lambda events, cancel: run_save(
            config, images.entries, source, opts, events, cancel, images.origin
        ),
    )


def inspect_job(config: Config, meta: Path) -> BackgroundJob[PackageReport]:
    """What a package holds, every data file verified (sizes, sha256, tar headers) before the
    window asks whether to push: a damaged package is refused before that question."""
    path = package_path(meta)
    opts = transfer_options(config)
    return BackgroundJob(
        "inspect",
        lambda events, cancel: check_package(
            config, path, [], verify="full", policy=opts.policy, cancel=cancel, events=events
        ),
    )


def load_job(config: Config, meta: Path, choices: Choices) -> BackgroundJob[RunResult]:
    targets = _targets(config, choices, True)
    # verified in full by inspect_job just before; sizes and headers again, and every blob's
    # digest as it is pushed
    opts = LoadOptions(transfer=_options(config, choices), verify="quick")
    return BackgroundJob(
        "load",
        lambda events, cancel: run_load(
            config, package_path(meta), targets, None, opts, events, cancel
        ),
    )


def failed_lines(result: Any) -> list[int]:
    """List lines that did not get through (in list order, each once)."""
    if isinstance(result, CheckReport):
        lines = [r.line for r in result.rows if not r.ok]
    elif isinstance(result, RunResult):
        lines = [r.line for r in result.images if r.status == "failed"]
    else:
        return []
    return sorted(set(lines))


def describe_package(report: PackageReport) -> str:
    """Images, size, kind and base of a package, for the confirmation before a load."""
    meta = report.meta
    size = sum(d.size for d in meta.datafiles)
    names = [f"  {i.repository}:{i.tag or i.digest[:19]}" for i in meta.images[:15]]
    if len(meta.images) > 15:
        names.append("  …")
    kind = _("incremental") if meta.kind == "incremental" else _("full")
    lines = [
        _("Package: {name}").format(name=report.path.name),
        _("Kind: {kind}").format(kind=kind),
    ]
    if meta.base is not None:
        lines.append(_("Base package: {base}").format(base=meta.base.file))
    lines.append(_("Size: {size} MB").format(size=f"{size / 1048576:.1f}"))
    lines.append(_("Images ({count}):").format(count=len(meta.images)))
    return "\n".join(lines + names)
