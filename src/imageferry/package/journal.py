"""The save journal: what an interrupted save finished, so a rerun resumes.

A JSON-lines file beside the data files: a header (fingerprint of the save's
arguments, the layout), then one line per finished blob or recorded tag, and for a large blob being
written, a line per checkpoint (``partial``: its first bytes are on disk).
It is removed when the meta file is written.

A line is only a claim. Claims are kept in memory at once and made durable in
groups (``commit``: by a :class:`~.groupcommit.Committer` shortly after the
first claim not yet committed, and on every clean stop): the data files
are fsynced first, then the lines are appended and the journal is fsynced. So a
claim on disk never names bytes that are not; a ``kill -9`` loses only the claims
made since the last commit (their blobs are saved again). A data file can still
be cut short behind the journal's back (a disk that lies about fsync), so a
resumed save checks the claims (``package/resume.py``). The header, and the
whole file whenever a claim is withdrawn, are written temp + rename; an append
that fails (a full disk) is cut back, so the file always ends with a whole line.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from imageferry.package.groupcommit import Committer
from imageferry.package.layout import Layout
from imageferry.package.nolink import open_no_link, replace_text_no_link
from imageferry.package.space import fsync_folder

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
        # makes the bytes of every claim so far durable (the writer fsyncs its data files)
        self.sync_data: Callable[[], None] = _nothing
        self._pending: list[dict[str, object]] = []  # claims not yet in the file
        self._lock = threading.Lock()  # the claims in memory
        self._commit_lock = threading.Lock()  # the file: one commit or rewrite at a time
        self._committer = Committer(self.commit)
        self._durable = True  # False: the file (header) was written without fsync

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
        """Begin (again) with ``layout``: forget everything done so far. Raises OSError.

        The header is synced by the first commit: until then there is no claim to lose."""
        with self._commit_lock, self._lock:
            self.layout = layout
            self.done.clear()
            self.order.clear()
            self.tags.clear()
            self.partial.clear()
            self._pending.clear()
            # over an earlier journal (the source changed): that one must not come back
            existed = self.path.exists()
            replace_text_no_link(self.path, self._text(), durable=existed)
            self._durable = existed

    def forget(self, digests: Iterable[str]) -> None:
        """Withdraw the claims on ``digests`` (and tags naming them); rewrites the file."""
        drop = set(digests)
        with self._commit_lock:
            with self._lock:
                self.done -= drop
                self.order = [d for d in self.order if d not in drop]
                self.tags = {k: v for k, v in self.tags.items() if v not in drop}
                self.partial = {
                    k: v for k, v in self.partial.items() if k not in self.done and k not in drop
                }
                self._pending = [r for r in self._pending if _named(r) not in drop]
                text, covered = self._text(), len(self._pending)
            self.sync_data()  # the text claims what is pending too
            replace_text_no_link(self.path, text)
            self._durable = True
            with self._lock:
                del self._pending[:covered]

    def _text(self) -> str:
        """The whole file for what is in memory (under the lock)."""
        head: dict[str, object] = {"fingerprint": self.fingerprint}
        if self.layout is not None:
            head["layout"] = self.layout.to_json()
        lines: list[dict[str, object]] = [head]
        lines += [{"done": d} for d in self.order]
        lines += [{"tag": [repo, tag, digest]} for (repo, tag), digest in self.tags.items()]
        lines += [{"partial": d, "bytes": n} for d, n in self.partial.items()]
        return "".join(json.dumps(x) + "\n" for x in lines)

    def mark_done(self, digest: str) -> None:
        """Claim a blob whose bytes are written (to the OS); durable at the next commit."""
        with self._lock:
            self._add_done(digest)
            self._queue({"done": digest})

    def mark_partial(self, digest: str, written: int) -> None:
        """Claim that the first ``written`` bytes of a blob are written."""
        with self._lock:
            self.partial[digest] = written
            self._queue({"partial": digest, "bytes": written})

    def _add_done(self, digest: str) -> None:
        self.partial.pop(digest, None)
        if digest not in self.done:
            self.done.add(digest)
            self.order.append(digest)

    def record_tag(self, repo: str, tag: str, digest: str) -> None:
        with self._lock:
            self.tags[(repo, tag)] = digest
            self._queue({"tag": [repo, tag, digest]})

    def _queue(self, record: dict[str, object]) -> None:
        self._pending.append(record)
        self._committer.due()

    def commit(self) -> None:
        """Make every claim so far durable: ``sync_data``, then append them and fsync.
        Raises OSError (the claims stay pending; a later commit tries again)."""
        with self._commit_lock:
            with self._lock:
                batch = list(self._pending)
            if not batch:
                return
            self.sync_data()
            self._append(_latest(batch))
            with self._lock:
                del self._pending[: len(batch)]

    def close(self) -> None:
        """A clean stop: end the committer, then commit what is left. Raises OSError."""
        self._committer.stop()
        self.commit()

    def _append(self, records: list[dict[str, object]]) -> None:
        with open_no_link(self.path, "ab") as f:
            fd = f.fileno()  # unbuffered: nothing is left to flush after a failure
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))
                os.fsync(fd)
            except OSError:
                _cut_back(fd, size)
                raise
        if not self._durable:  # the header's rename
            fsync_folder(self.path.parent)
            self._durable = True

    def remove(self) -> None:
        self._committer.stop()
        with self._commit_lock:
            with self._lock:
                self._pending.clear()
            self.path.unlink(missing_ok=True)


def _nothing() -> None:
    pass


def _named(record: dict[str, object]) -> object:
    """The digest a record claims something of (a tag: the digest it names)."""
    tag = record.get("tag")
    return tag[2] if isinstance(tag, list) else record.get("partial", record.get("done"))


def _latest(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """``records`` without the checkpoints a later record of the same blob supersedes."""
    last: dict[object, int] = {}
    for i, r in enumerate(records):
        if "tag" not in r:
            last[_named(r)] = i
    return [r for i, r in enumerate(records) if "partial" not in r or last[r["partial"]] == i]


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
