"""What both front ends read before a job: the image list, the chosen registries.

The CLI takes these from argv and files, the window from its text box and
pickers; both call the same functions here, so a list means the same thing
in either.
"""

from __future__ import annotations

from imageferry.core.config import Config, RegistryConfig
from imageferry.core.errors import ConfigError, InputError
from imageferry.core.imagelist import ListEntry, parse_image_list, parse_shard, shard
from imageferry.core.lazydata import quick_dataclass


@quick_dataclass(frozen=True)
class ImageList:
    """Parsed list lines; ``origin`` names where they came from in messages."""

    entries: list[ListEntry]
    origin: str

    def text_of(self, line: int) -> str:
        """The line as the user wrote it (renames included), for a list to rerun."""
        for e in self.entries:
            if e.line == line:
                return e.text
        return ""


def parse_list(text: str, origin: str, shard_spec: str | None = None) -> ImageList:
    """Parse ``text``; raise InputError naming bad lines, or when there is nothing to do.

    A share of a list (``shard_spec`` "i/n") may be empty: more machines than
    lines is not a mistake, so an empty share is returned, not refused.
    """
    entries = parse_image_list(text, origin)
    if shard_spec:
        i, n = parse_shard(shard_spec)
        if not entries:
            raise _nothing(origin)
        return ImageList(shard(entries, i, n), f"{origin} (share {i} of {n})")
    if not entries:
        raise _nothing(origin)
    return ImageList(entries, origin)


def _nothing(origin: str) -> InputError:
    return InputError(
        f"no images in {origin}: give one image per line (# starts a comment), "
        "for example library/nginx:1.25"
    )


def choose_source(config: Config, wanted: str | None) -> RegistryConfig:
    return config.find("source", wanted)


def choose_targets(
    config: Config, wanted: list[str] | None, required: bool
) -> list[RegistryConfig]:
    """The targets named (a target named twice is opened once), the only one, or none."""
    if not wanted:
        if not required:
            return []
        if len(config.target) == 1:
            return [config.target[0]]
        names = ", ".join(t.display_name for t in config.target)
        raise ConfigError(
            "choose a target with --to NAME or --to http://host:port"
            + (f" (configured: {names})" if names else " (cfg.yaml names none)")
        )
    return [config.find("target", name) for name in wanted]
