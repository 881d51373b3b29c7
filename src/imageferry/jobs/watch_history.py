"""What ``watch`` already delivered: a small JSON file beside cfg.yaml.

Per target reference (``host/repo:tag``) it keeps the source digest that was
last delivered there, so a restarted watch copies only tags that are new or
whose digest moved. Losing the file costs one HEAD per tag and target (copy
skips what the target has), never a wrong result; so a damaged file is set
aside with a warning, not a reason to stop.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imageferry.core.config import Config

HISTORY_NAME = "imageferry-watch.json"
MAX_HISTORY = 64 * 1024 * 1024
FORMAT = 1


def default_history_path(config: Config) -> Path:
    """Beside cfg.yaml (the working directory when there is none)."""
    return config.folder / HISTORY_NAME


@dataclass
class WatchHistory:
    """Which source digest each target last got, per image."""

    path: Path
    delivered: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> tuple[WatchHistory, str | None]:
        """The history in ``path`` (empty when missing) and a warning when it was unreadable."""
        if not path.exists():
            return cls(path), None
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_HISTORY + 1)
            if len(raw) > MAX_HISTORY:
                raise ValueError("larger than 64 MiB")
            doc = json.loads(raw)
            delivered = doc["delivered"]
            if doc.get("format") != FORMAT or not isinstance(delivered, dict):
                raise ValueError("not a watch history of this version")
            clean = {
                str(k): {str(a): str(b) for a, b in v.items()}
                for k, v in delivered.items()
                if isinstance(v, dict) and isinstance(v.get("digest"), str)
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return cls(path), (
                f"watch history {path} could not be read ({exc}); starting afresh "
                "(tags the targets already have are skipped, not copied again)"
            )
        return cls(path, clean), None

    def digest_at(self, target_ref: str) -> str | None:
        """The source digest last delivered to ``target_ref``, or None."""
        entry = self.delivered.get(target_ref)
        return entry.get("digest") if entry else None

    def record(self, target_ref: str, source_ref: str, digest: str) -> None:
        self.delivered[target_ref] = {
            "source": source_ref,
            "digest": digest,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def save(self) -> None:
        """Write atomically (temp file in the same folder, then rename). Raises OSError."""
        doc = {"format": FORMAT, "delivered": dict(sorted(self.delivered.items()))}
        data = json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
