"""``${VAR}`` in cfg.yaml values: replaced from the environment, unset ones reported."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(value: Any) -> tuple[Any, list[str]]:
    """``value`` with every set ``${VAR}`` replaced, and the names of unset ones."""
    if not isinstance(value, str):
        return value, []
    unset = [m.group(1) for m in ENV_RE.finditer(value) if m.group(1) not in os.environ]
    if unset:
        return value, unset
    return ENV_RE.sub(lambda m: os.environ[m.group(1)], value), []


def expand_notify_env(data: dict[str, Any], path: Path) -> list[str]:
    """``${ENV}`` in webhook URLs and DingTalk keys, as in passwords; returns what names an
    unset variable (it matters only to a watch: see :meth:`Config.require_notify_env`)."""
    unset: list[str] = []
    hooks = data.get("webhook")
    if isinstance(hooks, list):
        data["webhook"] = [expanded(h, f"{path}: webhook[{i}]", unset) for i, h in enumerate(hooks)]
    elif isinstance(hooks, str):
        data["webhook"] = expanded(hooks, f"{path}: webhook", unset)
    robots = data.get("dingtalk")
    for i, robot in enumerate(robots if isinstance(robots, list) else [robots]):
        if isinstance(robot, dict):
            for key in ("token", "secret"):
                if key in robot:
                    robot[key] = expanded(robot[key], f"{path}: dingtalk[{i}].{key}", unset)
    return unset


def expanded(value: Any, where: str, unset: list[str]) -> Any:
    """``value`` with ``${VAR}`` replaced; an unset one is noted in ``unset``, naming ``where``."""
    result, missing = expand_env(value)
    if missing:
        unset.append(
            f"{where} refers to ${{{missing[0]}}}, but that environment variable is not set"
        )
    return result
