"""The jobs API both front ends use, in-process: events as it goes, stop from another thread,
one way to learn a run was stopped, counts per target."""

from __future__ import annotations

import time

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig
from imageferry.core.events import ImageChecked, ImageDone, PlanReady, StageStarted
from imageferry.jobs.check import run_check
from imageferry.jobs.copy import run_copy
from imageferry.jobs.inputs import parse_list
from imageferry.jobs.load import LoadOptions, run_load
from imageferry.jobs.options import transfer_options
from imageferry.jobs.runner import BackgroundJob
from imageferry.jobs.save import run_save, save_options
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied, get_manifest

MB = 1024 * 1024


def _wait(job: BackgroundJob, timeout: float = 120) -> None:
    assert job.join(timeout), f"{job.name} did not end within {timeout}s"


def test_copy_to_two_targets_reports_per_target_counts(source, new_registry):
    a, b = new_registry(), new_registry()
    config = Config()
    images = parse_list(source.list_text(), "list")
    targets = [RegistryConfig(registry=a.url, name="a"), RegistryConfig(registry=b.url, name="b")]
    job = BackgroundJob(
        "copy",
        lambda events, cancel: run_copy(
            config,
            images.entries,
            RegistryConfig(registry=source.url),
            targets,
            transfer_options(config),
            events,
            cancel,
        ),
    ).start()
    _wait(job)
    assert job.error is None and job.crashed is None
    assert job.result is not None and job.result.ok
    events = job.drain()
    plan = next(e for e in events if isinstance(e, PlanReady))
    assert plan.targets == ("a", "b")
    done = [e for e in events if isinstance(e, ImageDone)]
    assert {e.target_name for e in done} == {"a", "b"}
    snap = job.progress.snapshot()
    assert [(t.name, t.done, t.total) for t in snap.targets] == [("a", 12, 12), ("b", 12, 12)]
    assert (snap.images_done, snap.images_total, snap.images_failed) == (24, 24, 0)
    assert snap.fraction == 1.0


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    from imageferry.testing.registry_server import start_registry

    server = start_registry(tmp_path_factory.mktemp("slow"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    layers = [make_layer(f"jobs-{i}", 4 * MB, level=0) for i in range(4)]
    manifest, blobs = make_image(layers)
    push_image(client, "big/steps", "1", manifest, blobs)
    client.close()
    proxy = FaultProxy(server.port, lambda m, p, n: Fault(rate=4 * MB) if "/blobs/" in p else None)
    yield server, proxy
    proxy.stop()
    server.stop()


def test_stop_from_another_thread_then_rerun_resumes(slow_source, new_registry):
    server, proxy = slow_source
    target = new_registry()
    config = Config()
    entries = parse_list("big/steps:1", "list").entries

    def copy(src: str):
        return lambda events, cancel: run_copy(
            config,
            entries,
            RegistryConfig(registry=src),
            [RegistryConfig(registry=target.url)],
            transfer_options(config, maxconn=1),
            events,
            cancel,
        )

    job = BackgroundJob("copy", copy(proxy.url)).start()
    deadline = time.monotonic() + 60
    while job.progress.snapshot().bytes_read < 6 * MB and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()  # what 停止 does, from the window's thread
    _wait(job, 30)
    assert job.error is None and job.crashed is None
    assert job.result is not None and job.result.cancelled and not job.result.ok
    assert [r.status for r in job.result.images] == ["cancelled"]
    assert get_manifest(target.url, "big/steps", "1") is None

    again = BackgroundJob("copy", copy(server.url)).start()
    _wait(again)
    assert again.result is not None and again.result.ok
    assert again.result.bytes_read <= 13 * MB  # the finished layer was not read again
    assert_image_copied(server.url, "big/steps", "1", target.url, "big/steps")


def test_stop_while_planning_is_a_cancelled_result_not_an_exception(source, new_registry):
    """Manifests crawl in from the source (the plan is under way) when the window stops it."""
    config = Config()
    images = parse_list(source.list_text(), "list")
    crawl = FaultProxy(
        source.server.port, lambda m, p, n: Fault(rate=400) if "/manifests/" in p else None
    )
    try:
        job = BackgroundJob(
            "copy",
            lambda events, cancel: run_copy(
                config,
                images.entries,
                RegistryConfig(registry=crawl.url),
                [RegistryConfig(registry=new_registry().url)],
                transfer_options(config, maxconn=2),
                events,
                cancel,
            ),
        ).start()
        time.sleep(0.5)
        assert job.running and job.progress.snapshot().stage == "planning"
        job.stop()
        _wait(job, 60)
    finally:
        crawl.stop()
    assert job.error is None and job.crashed is None
    assert job.result is not None and job.result.cancelled and not job.result.ok


def test_check_sends_a_row_per_line_as_it_goes(source):
    config = Config()
    text = source.list_text() + "no/such:1\n"
    images = parse_list(text, "list")
    seen: list[ImageChecked] = []
    report = run_check(
        config,
        images.entries,
        RegistryConfig(registry=source.url),
        [],
        transfer_options(config),
        lambda e: seen.append(e) if isinstance(e, ImageChecked) else None,
        CancelToken(),
    )
    assert len(seen) == 13 and len(report.rows) == 13
    assert sorted(r.line for r in seen) == [r.line for r in report.rows]
    assert report.rows[-1].missing and not report.ok


def test_save_and_load_report_their_stages_and_stop_during_verify(source, new_registry, tmp_path):
    config = Config()
    images = parse_list(source.list_text(), "list")
    opts = save_options(config, transfer_options(config), outdir=tmp_path / "pkg")
    src = RegistryConfig(registry=source.url)
    save = BackgroundJob(
        "save", lambda e, c: run_save(config, images.entries, src, opts, e, c)
    ).start()
    _wait(save)
    assert save.result is not None and save.result.ok, save.result
    stages = [e.stage for e in save.drain() if isinstance(e, StageStarted)]
    assert stages == ["finishing"]
    meta = save.result.package
    assert meta is not None

    target = new_registry()
    dst = [RegistryConfig(registry=target.url)]

    def load(events, cancel):
        def stop_when_verifying(event):
            events(event)
            if isinstance(event, StageStarted):
                cancel.cancel()

        return run_load(config, meta, dst, None, LoadOptions(), stop_when_verifying, cancel)

    stopped = BackgroundJob("load", load).start()
    _wait(stopped)
    assert stopped.result is not None and stopped.result.cancelled
    assert stopped.result.images == []  # nothing pushed
    assert get_manifest(target.url, "demo/app0", "1.0") is None

    full = BackgroundJob(
        "load", lambda e, c: run_load(config, meta, dst, None, LoadOptions(), e, c)
    ).start()
    _wait(full)
    assert full.result is not None and full.result.ok
    assert [e.stage for e in full.drain() if isinstance(e, StageStarted)] == ["verifying"]
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "demo/app0")
