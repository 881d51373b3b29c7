"""What the window remembers between runs, in a small JSON file beside cfg.yaml."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_NAME = "imageferry-gui.json"


@dataclass
class GuiState:
    list_text: str = ""
    source: str = ""
    targets: list[str] = field(default_factory=list)
    save_folder: str = ""
    package_folder: str = ""

    @classmethod
    def load(cls, path: Path) -> GuiState:
        """The saved state, or a fresh one when the file is missing or unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict):
            return cls()
        if isinstance(data.get("target"), str):  # written by a version with one target
            data.setdefault("targets", [data["target"]])
        targets = data.get("targets")
        if not (isinstance(targets, list) and all(isinstance(t, str) for t in targets)):
            targets = []

        def text(key: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else ""

        return cls(
            list_text=text("list_text"),
            source=text("source"),
            targets=list(targets),
            save_folder=text("save_folder"),
            package_folder=text("package_folder"),
        )

    def save(self, path: Path) -> bool:
        """Write atomically (a crash never leaves half a file); False when it cannot."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), "utf-8")
            os.replace(tmp, path)
        except OSError:
            return False
        return True
