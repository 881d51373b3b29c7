"""The save journal: what an interrupted save finished, so a rerun resumes.

A JSON-lines file beside the data files: a header (fingerprint of the save's
arguments, the layout), then one line per finished blob or recorded tag, and for a large blob being
written, a line per checkpoint (``partial``: its first bytes are on disk).
It is removed when the meta file is written.

A line is only a claim: a blob's line is appended (and fsynced) after its
bytes were fsynced, but a data file can still be cut short behind the
journal's back, so a resumed save checks the claims (``package/resume.py``).
The header, and the whole file whenever a claim is withdrawn, are written
temp + fsync + rename; an append that fails (a full disk) is cut back, so the
file always ends with a whole line.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from imageferry.package.layout import Layout
from imageferry.package.nolink import open_no_link, replace_text_no_link

SUFFIX = ".journal"


class Journal:
    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.layout: Layout | None = None
        self.done: set[str] = set()
        self.order: list[str] = []  # ``done`` in the order the blobs were recorded
        self.tags: dict[tuple[str, str], str] = {}
        self.partial: dict[str, int] = {}  # unfinished blobs: bytes claimed on disk
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
            journal = cls(path, str(head.get("fingerprint", "")))
            if head.get("layout"):
                journal.layout = Layout.from_json(head["layout"])
        except (OSError, ValueError, IndexError, KeyError, TypeError, AttributeError):
            return None
        for line in lines[1:]:
            journal._apply_line(line)
        return journal

    def _apply_line(self, line: str) -> None:
        """One record; a line cut short by a crash (or not a record) claims nothing."""
        try:
            rec = json.loads(line)
        except ValueError:
            return
        if not isinstance(rec, dict):
            return
        done, tag, part = rec.get("done"), rec.get("tag"), rec.get("partial")
        if isinstance(part, str) and isinstance(rec.get("bytes"), int) and rec["bytes"] > 0:
            self.partial[part] = rec["bytes"]
        elif isinstance(done, str) and done not in self.done:
            self.partial.pop(done, None)
            self.done.add(done)
            self.order.append(done)
        elif isinstance(tag, list) and len(tag) == 3 and all(isinstance(t, str) for t in tag):
            self.tags[(tag[0], tag[1])] = tag[2]

    def start(self, layout: Layout) -> None:
        """Begin (again) with ``layout``: forget everything done so far. Raises OSError."""
        with self._lock:
            self.layout = layout
            self.done.clear()
            self.order.clear()
            self.tags.clear()
            self.partial.clear()
            self._rewrite()

    def forget(self, digests: Iterable[str]) -> None:
        """Withdraw the claims on ``digests`` (and tags naming them); rewrites the file."""
        drop = set(digests)
        with self._lock:
            self.done -= drop
            self.order = [d for d in self.order if d not in drop]
            self.tags = {k: v for k, v in self.tags.items() if v not in drop}
            self.partial = {
                k: v for k, v in self.partial.items() if k not in self.done and k not in drop
            }
            self._rewrite()

    def _rewrite(self) -> None:
        head: dict[str, object] = {"fingerprint": self.fingerprint}
        if self.layout is not None:
            head["layout"] = self.layout.to_json()
        lines: list[dict[str, object]] = [head]
        lines += [{"done": d} for d in self.order]
        lines += [{"tag": [repo, tag, digest]} for (repo, tag), digest in self.tags.items()]
        lines += [{"partial": d, "bytes": n} for d, n in self.partial.items()]
        replace_text_no_link(self.path, "".join(json.dumps(x) + "\n" for x in lines))

    def mark_done(self, digest: str) -> None:
        """Record a blob whose bytes are already on disk (fsynced). Raises OSError."""
        self._append({"done": digest}, lambda: self._add_done(digest))

    def mark_partial(self, digest: str, written: int) -> None:
        """Record that the first ``written`` bytes of a blob are on disk (fsynced)."""
        self._append(
            {"partial": digest, "bytes": written},
            lambda: self.partial.__setitem__(digest, written),
        )

    def _add_done(self, digest: str) -> None:
        self.partial.pop(digest, None)
        if digest not in self.done:
            self.done.add(digest)
            self.order.append(digest)

    def record_tag(self, repo: str, tag: str, digest: str) -> None:
        self._append(
            {"tag": [repo, tag, digest]}, lambda: self.tags.__setitem__((repo, tag), digest)
        )

    def _append(self, record: dict, apply: Callable[[], None]) -> None:
        with self._lock:
            with open_no_link(self.path, "ab") as f:
                fd = f.fileno()  # unbuffered: nothing is left to flush after a failure
                size = os.fstat(fd).st_size
                try:
                    _write_all(fd, (json.dumps(record) + "\n").encode("utf-8"))
                    os.fsync(fd)
                except OSError:
                    _cut_back(fd, size)
                    raise
            apply()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _cut_back(fd: int, size: int) -> None:
    """Drop a partly appended line, so the journal still ends with a whole one."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # then the reader skips the partial line
