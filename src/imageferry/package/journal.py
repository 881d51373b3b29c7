"""The save journal: what an interrupted save finished, so a rerun resumes.

A JSON-lines file beside the data files: a header (fingerprint of the save's
arguments, the layout), then one line per finished blob or recorded tag.
It is removed when the meta file is written.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from imageferry.package.layout import Layout
from imageferry.package.nolink import open_no_link, write_text_no_link

SUFFIX = ".journal"


class Journal:
    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.layout: Layout | None = None
        self.done: set[str] = set()
        self.tags: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    @classmethod
    def find(cls, folder: Path, pattern: str, fingerprint: str) -> Journal | None:
        """A journal of an earlier run with the same arguments, or None."""
        for path in sorted(folder.glob(f"*/{pattern}{SUFFIX}"), reverse=True):
            journal = cls._read(path)
            if journal is not None and journal.fingerprint == fingerprint:
                return journal
        return None

    @classmethod
    def _read(cls, path: Path) -> Journal | None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            head = json.loads(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        journal = cls(path, head.get("fingerprint", ""))
        if head.get("layout"):
            journal.layout = Layout.from_json(head["layout"])
        for line in lines[1:]:
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a line cut short by a crash: everything before it holds
            if "done" in rec:
                journal.done.add(rec["done"])
            elif "tag" in rec:
                repo, tag, digest = rec["tag"]
                journal.tags[(repo, tag)] = digest
        return journal

    def start(self, layout: Layout) -> None:
        """Begin (again) with ``layout``: forget everything done so far."""
        with self._lock:
            self.layout = layout
            self.done.clear()
            self.tags.clear()
            head = {"fingerprint": self.fingerprint, "layout": layout.to_json()}
            write_text_no_link(self.path, json.dumps(head) + "\n")

    def mark_done(self, digest: str) -> None:
        self._append({"done": digest}, lambda: self.done.add(digest))

    def record_tag(self, repo: str, tag: str, digest: str) -> None:
        self._append(
            {"tag": [repo, tag, digest]}, lambda: self.tags.__setitem__((repo, tag), digest)
        )

    def _append(self, record: dict, apply: Callable[[], None]) -> None:
        with self._lock:
            with open_no_link(self.path, "ab") as f:
                f.write((json.dumps(record) + "\n").encode("utf-8"))
            apply()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
