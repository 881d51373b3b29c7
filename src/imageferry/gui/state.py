"""What the window remembers between runs, in a small JSON file beside cfg.yaml."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

STATE_NAME = "imageferry-gui.json"


@dataclass
class GuiState:
    list_text: str = ""
    source: str = ""
    target: str = ""
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
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known and isinstance(v, str)})

    def save(self, path: Path) -> bool:
        """Write atomically (a crash never leaves half a file); False when it cannot."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), "utf-8")
            os.replace(tmp, path)
        except OSError:
            return False
        return True
