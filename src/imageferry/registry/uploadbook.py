"""The resume file: where each unfinished blob upload lives on its target.

One small JSON file (``.imageferry-uploads.json`` beside cfg.yaml) maps
``registry + repository + digest`` to the upload's location and the bytes the
target acknowledged there. It is rewritten atomically (a temporary file, then
a rename) after every acknowledged piece, so a run stopped at any point
leaves a readable file; an unreadable one counts as empty (the uploads start
anew, which is never wrong). Upload locations hold no credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from imageferry.core.lazydata import quick_dataclass
from imageferry.registry.transport import without_userinfo

FILE_NAME = ".imageferry-uploads.json"
_MAX_SIZE = 4 * 1024 * 1024
STALE = 7 * 86400.0  # registries purge forgotten uploads after about a week


@quick_dataclass(frozen=True)
class Held:
    """An upload session on a target: its location and the bytes it acknowledged."""

    location: str
    offset: int


class UploadBook:
    """Thread-safe; every change is on disk before the method returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @staticmethod
    def key(registry: str, repository: str, digest: str) -> str:
        return f"{registry} {repository} {digest}"

    def get(self, key: str) -> Held | None:
        with self._lock:
            entry = self._load().get(key)
        if not isinstance(entry, dict):
            return None
        location, offset = entry.get("location"), entry.get("offset")
        if not isinstance(location, str) or not isinstance(offset, int) or offset < 0:
            return None
        return Held(location, offset)

    def put(self, key: str, held: Held) -> None:
        now = time.time()
        entry = {"location": without_userinfo(held.location), "offset": held.offset, "at": now}
        with self._lock:
            data = {k: v for k, v in self._load().items() if not _stale(v, now)}
            data[key] = entry
            self._save(data)

    def drop(self, key: str) -> None:
        with self._lock:
            data = self._load()
            if data.pop(key, None) is not None:
                self._save(data)

    def _load(self) -> dict[str, object]:
        try:
            with self.path.open("rb") as f:
                raw = f.read(_MAX_SIZE + 1)
            data = json.loads(raw) if len(raw) <= _MAX_SIZE else {}
        except (OSError, ValueError, RecursionError):
            return {}
        uploads = data.get("uploads") if isinstance(data, dict) else None
        return dict(uploads) if isinstance(uploads, dict) else {}

    def _save(self, uploads: dict[str, object]) -> None:
        """Write atomically; a resume file that cannot be written only costs resuming."""
        text = json.dumps({"version": 1, "uploads": uploads}, indent=1, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".uploads-", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            if uploads:
                os.replace(tmp, self.path)
                return
            os.unlink(tmp)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # nothing left to resume
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _stale(entry: object, now: float) -> bool:
    at = entry.get("at") if isinstance(entry, dict) else None
    return not isinstance(at, int | float) or now - at > STALE
