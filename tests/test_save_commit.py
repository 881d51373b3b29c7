"""The save's journal commits in groups: no fsync per blob, data before claims, nothing lost
on a clean stop, and after a crash only what was committed is trusted (docs/resume.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from imageferry.core.digest import Digest
from imageferry.core.manifest import Descriptor
from imageferry.package import groupcommit
from imageferry.package.layout import Item
from imageferry.package.writer import PackageWriter

KIB = 1024


def _blobs(n: int) -> list[tuple[bytes, Descriptor]]:
    out = []
    for i in range(n):
        data = bytes([i + 1]) * ((i + 1) * 40 * KIB)
        out.append((data, Descriptor("application/octet-stream", Digest.of_bytes(data), len(data))))
    return out


def _writer(folder: Path, blobs: list[tuple[bytes, Descriptor]], files: int = 2) -> PackageWriter:
    writer = PackageWriter.open(
        folder, "t", "fp", incremental=None, source="x", compression="none", files=files
    )
    writer.prepare([Item(str(d.digest), d.size, d.media_type) for _, d in blobs])
    return writer


def _claims(writer: PackageWriter) -> list[str]:
    lines = writer.journal.path.read_text().splitlines()[1:]
    return [json.loads(x)["done"] for x in lines if '"done"' in x]


@pytest.fixture
def no_background(monkeypatch):
    """Commits only when the test says (the committer's delay made long)."""
    monkeypatch.setattr(groupcommit, "COMMIT_EVERY", 3600.0)


@pytest.fixture
def fsyncs(monkeypatch):
    """Every fsync and every journal append, in order, by file name."""
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append("fsync " + Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return events


def test_writing_blobs_waits_for_no_disk(tmp_path, no_background, fsyncs):
    blobs = _blobs(6)
    writer = _writer(tmp_path, blobs)
    fsyncs.clear()
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    assert fsyncs == []  # the old code synced each blob, then the journal, per blob
    assert _claims(writer) == []  # claimed in memory only
    assert writer.journal.done == {str(d.digest) for _, d in blobs}

    writer.journal.commit()
    data_files = {writer.data_path(k).name for k in range(2)}
    synced = [e.split(" ", 1)[1] for e in fsyncs]
    assert set(synced[:2]) == data_files  # the data first, once each
    assert synced[2] == writer.journal.path.name  # then the journal, once
    assert synced[3:] == [writer.folder.name]  # the first commit: the header's rename too
    assert sorted(_claims(writer)) == sorted(str(d.digest) for _, d in blobs)


def test_a_claim_reaches_the_journal_only_after_its_data_file_was_synced(
    tmp_path, no_background, fsyncs
):
    blobs = _blobs(4)
    writer = _writer(tmp_path, blobs)
    journal = writer.journal
    seen_at_sync: list[list[str]] = []
    sync_data = journal.sync_data

    def sync_then_look() -> None:
        sync_data()
        seen_at_sync.append(_claims(writer))

    journal.sync_data = sync_then_look
    for data, desc in blobs[:2]:
        writer.put_blob("r", desc, [data])
    journal.commit()
    for data, desc in blobs[2:]:
        writer.put_blob("r", desc, [data])
    journal.commit()
    first = [str(d.digest) for _, d in blobs[:2]]
    assert seen_at_sync == [[], first]  # each time, the lines came after the sync
    assert _claims(writer) == first + [str(d.digest) for _, d in blobs[2:]]


def test_after_a_crash_only_committed_claims_are_trusted(tmp_path, no_background):
    blobs = _blobs(4)
    writer = _writer(tmp_path, blobs, files=1)
    for data, desc in blobs[:2]:
        writer.put_blob("r", desc, [data])
    writer.journal.commit()
    for data, desc in blobs[2:]:
        writer.put_blob("r", desc, [data])  # then kill -9: no close, no commit
    again = PackageWriter.open(
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=1
    )
    assert again.resumed
    assert again.journal.done == {str(d.digest) for _, d in blobs[:2]}
    for data, desc in blobs[2:]:
        assert not again.has_blob("r", desc)
        again.put_blob("r", desc, [data])
    meta = again.finish([])
    assert not again.journal.path.exists() and meta.is_file()


def test_a_clean_stop_commits_every_claim(tmp_path, no_background):
    blobs = _blobs(3)
    writer = _writer(tmp_path, blobs)
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    writer.close()  # what run_save does on Ctrl-C, an error, or any end
    assert sorted(_claims(writer)) == sorted(str(d.digest) for _, d in blobs)
    again = PackageWriter.open(
        tmp_path, "t", "fp", incremental=None, source="x", compression="none", files=2
    )
    assert again.journal.done == {str(d.digest) for _, d in blobs}


def test_the_committer_commits_on_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(groupcommit, "COMMIT_EVERY", 0.05)
    blobs = _blobs(2)
    writer = _writer(tmp_path, blobs)
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    deadline = time.monotonic() + 30
    while len(_claims(writer)) < 2:
        assert time.monotonic() < deadline, "the journal was never committed"
        time.sleep(0.01)
    writer.close()


def test_the_finished_package_leaves_no_committer_behind(tmp_path):
    blobs = _blobs(2)
    writer = _writer(tmp_path, blobs)
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    meta = writer.finish([])
    writer.close()
    assert meta.is_file() and not writer.journal.path.exists()
    thread = writer.journal._committer._thread
    assert thread is None or not thread.is_alive()


def test_the_meta_file_comes_after_every_data_file_is_synced_whole(
    tmp_path, no_background, fsyncs, monkeypatch
):
    import imageferry.package.writer as writer_module

    blobs = _blobs(3)
    writer = _writer(tmp_path, blobs, files=2)
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    real_close, real_replace = writer_module.close_archives, os.replace

    def close_archives(*args, **kwargs):
        fsyncs.append("tar ends written")
        return real_close(*args, **kwargs)

    def replace(src, dst) -> None:
        fsyncs.append("rename " + Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(writer_module, "close_archives", close_archives)
    monkeypatch.setattr(os, "replace", replace)
    fsyncs.clear()
    meta = writer.finish([])
    ends = fsyncs.index("tar ends written")
    renamed = fsyncs.index("rename " + meta.name)
    for k in range(2):
        assert ends < fsyncs.index("fsync " + writer.data_path(k).name) < renamed
    assert fsyncs.index("fsync " + writer.journal.path.name) < renamed


def test_a_withdrawn_claim_never_reaches_the_journal(tmp_path, no_background):
    blobs = _blobs(3)
    writer = _writer(tmp_path, blobs)
    for data, desc in blobs:
        writer.put_blob("r", desc, [data])
    gone = str(blobs[1][1].digest)
    writer.journal.mark_partial(gone, 10)
    writer.journal.forget([gone])  # as when a continued blob turns out wrong
    writer.close()
    kept = [str(d.digest) for _, d in blobs if str(d.digest) != gone]
    assert sorted(_claims(writer)) == sorted(kept)
    claims = writer.journal.path.read_text().splitlines()[1:]  # after the layout header
    assert not [line for line in claims if gone in line]


def test_checkpoints_of_one_blob_commit_as_the_latest_only(tmp_path, no_background):
    blobs = _blobs(2)
    writer = _writer(tmp_path, blobs)
    first, second = (str(d.digest) for _, d in blobs)
    for n in (10, 20, 30):
        writer.journal.mark_partial(first, n)
        writer.journal.mark_partial(second, n)
    writer.put_blob("r", blobs[1][1], [blobs[1][0]])  # the second is done
    writer.close()
    lines = [json.loads(x) for x in writer.journal.path.read_text().splitlines()[1:]]
    assert lines == [{"partial": first, "bytes": 30}, {"done": second}]


def test_a_failed_data_fsync_fails_the_save_even_if_a_retry_succeeds(tmp_path, monkeypatch):
    """The OS may report a lost write to one fsync only: the next one "succeeds" over bytes
    that never reached the disk. The first failure must end the save, with no meta file."""
    blobs = _blobs(1)
    writer = _writer(tmp_path, blobs, files=1)
    real_fsync, failed = os.fsync, []

    def fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).suffix == ".tar" and not failed:
            failed.append(fd)
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    writer.put_blob("r", blobs[0][1], [blobs[0][0]])
    with pytest.raises(OSError):
        writer.journal.commit()  # as the committer thread would, first
    assert _claims(writer) == []
    with pytest.raises(Exception, match="Input/output error"):
        writer.finish([])
    writer.close()
    assert failed and not list(tmp_path.rglob("*_meta.yaml"))


def test_no_claim_is_durable_before_a_sync_under_way_ends(tmp_path, monkeypatch):
    """finish() syncs the data files while the committer may commit: the claim must wait."""
    import threading

    blobs = _blobs(1)
    writer = _writer(tmp_path, blobs, files=1)
    real_fsync, events = os.fsync, []

    def fsync(fd: int) -> None:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        if name.endswith(".tar"):
            events.append("data start")
            time.sleep(0.3)  # a slow disk
            real_fsync(fd)
            events.append("data end")
        else:
            real_fsync(fd)
            events.append("fsync " + name)

    monkeypatch.setattr(os, "fsync", fsync)
    writer.put_blob("r", blobs[0][1], [blobs[0][0]])
    syncing = threading.Thread(target=writer._dirty.sync)
    syncing.start()  # the data's sync has begun (its set is taken) …
    while "data start" not in events:
        time.sleep(0.005)
    writer.journal.commit()  # … when a commit comes: it must not write the claim before
    syncing.join()
    assert events.index("data end") < events.index(f"fsync {writer.journal.path.name}")
    writer.close()
