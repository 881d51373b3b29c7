"""imageferry watch against real registries: which tags, moved tags, history, webhooks, stop."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imageferry.core.config import Config, RegistryConfig
from imageferry.core.events import WatchRound
from imageferry.jobs.inputs import parse_list
from imageferry.jobs.options import transfer_options
from imageferry.jobs.runner import BackgroundJob
from imageferry.jobs.watch import WatchSettings, run_watch
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
from support.faultproxy import Fault, FaultProxy
from support.receiver import Receiver
from support.verify import get_manifest


def push_tags(url: str, repo: str, tags: list[str], seed: str = "w") -> dict[str, str]:
    """Push a small distinct image under each tag; returns tag -> manifest digest."""
    client = Registry(RegistryConfig(registry=url), writable=True)
    try:
        out = {}
        for tag in tags:
            manifest, blobs = make_image([make_layer(f"{seed}-{repo}-{tag}", 2048)], label=tag)
            out[tag] = str(push_image(client, repo, tag, manifest, blobs).digest)
        return out
    finally:
        client.close()


def target_digest(url: str, repo: str, tag: str) -> str | None:
    raw = get_manifest(url, repo, tag)
    return None if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()


def write_cfg(tmp_path: Path, source: str, target: str, extra: str = "") -> None:
    (tmp_path / "cfg.yaml").write_text(
        f"source:\n- name: company\n  registry: {source}\n"
        f"target:\n- name: site\n  registry: {target}\n" + extra
    )


def rounds(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if '"round"' in line]


def test_once_copies_tags_at_or_above_the_listed_one_and_posts_json(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    digests = push_tags(src.url, "demo/app", ["0.9", "1.0", "1.2", "1.10", "v2.0", "latest"])
    with Receiver() as hook:
        write_cfg(tmp_path, src.url, dst.url, f"webhook:\n- {hook.url}/hooks/imageferry\n")
        result = cli("watch", "demo/app:1.2", "--once", "--json")
        assert result.returncode == 0, result.output
        (doc,) = rounds(result)
        assert (doc["copied"], doc["failed"], doc["followed"]) == (3, 0, 3)
        for tag in ("1.2", "1.10", "v2.0"):
            assert target_digest(dst.url, "demo/app", tag) == digests[tag]
        for tag in ("0.9", "1.0", "latest"):
            assert target_digest(dst.url, "demo/app", tag) is None
        bodies = hook.bodies()
    images = [b for b in bodies if b["event"] == "image"]
    assert sorted(b["image"] for b in images) == [
        f"{src.host}/demo/app:{t}" for t in ("1.10", "1.2", "v2.0")
    ]
    one = next(b for b in images if b["image"].endswith(":1.10"))
    assert one["target"] == f"{dst.host}/demo/app:1.10" and one["status"] == "copied"
    assert one["digest"] == digests["1.10"] and one["error"] is None and one["time"]
    (summary,) = [b for b in bodies if b["event"] == "round"]
    assert summary["copied"] == 3 and len(summary["images"]) == 3
    assert (tmp_path / "imageferry-watch.json").is_file()


def test_restart_does_not_recopy_and_a_moved_tag_is_recopied(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "team/svc", ["1.0", "1.1"])
    with Receiver() as hook:
        write_cfg(tmp_path, src.url, dst.url, f"webhook: {hook.url}/h\n")
        first = cli("watch", "team/svc", "--once", "--json")
        assert first.returncode == 0, first.output
        assert rounds(first)[0]["copied"] == 2
        sent = len(hook.received)

        again = cli("watch", "team/svc", "--once", "--json")
        assert again.returncode == 0, again.output
        (doc,) = rounds(again)
        # the history says both are delivered: copy is not even asked (no skip rows)
        assert (doc["copied"], doc["skipped"], doc["followed"]) == (0, 0, 2)
        assert len(hook.received) == sent  # nothing new, nothing posted

        moved = push_tags(src.url, "team/svc", ["1.1"], seed="moved")["1.1"]
        third = cli("watch", "team/svc", "--once", "--json")
        assert third.returncode == 0, third.output
        (doc,) = rounds(third)
        assert (doc["copied"], doc["skipped"]) == (1, 0)
        assert [i["target"] for i in doc["images"]] == [f"{dst.host}/team/svc:1.1"]
        assert target_digest(dst.url, "team/svc", "1.1") == moved
        assert hook.bodies()[-2]["digest"] == moved


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_running_watch_picks_up_a_new_tag_and_stops_on_a_signal(new_registry, tmp_path, stop):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/live", ["1.0"])
    write_cfg(tmp_path, src.url, dst.url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "imageferry", "watch", "demo/live:1.0", "--interval", "1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(lambda: target_digest(dst.url, "demo/live", "1.0") is not None, proc)
        new = push_tags(src.url, "demo/live", ["1.1"])["1.1"]
        _wait_until(lambda: target_digest(dst.url, "demo/live", "1.1") == new, proc)
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=5)  # ends within a couple of seconds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "watch stopped after" in out
    assert "Traceback" not in err


def _wait_until(condition, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the watch did not deliver in time"
        time.sleep(0.1)


def test_failing_webhook_never_stops_the_watch_nor_shows_its_secret(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0"])
    with Receiver(status=500) as hook:
        write_cfg(tmp_path, src.url, dst.url, f"webhook:\n- {hook.url}/hook/SECRETTOKEN42?k=PSST\n")
        result = cli("watch", "demo/app", "--once", "--log", "w.log")
        assert len(hook.received) == 3  # tried a few times, then left alone for the round
    assert result.returncode == 0, result.output
    assert "notification to webhook 1 (http://127.0.0.1) failed" in result.stderr
    log = (tmp_path / "w.log").read_text()
    for secret in ("SECRETTOKEN42", "PSST"):
        assert secret not in result.output and secret not in log
    assert target_digest(dst.url, "demo/app", "1.0") is not None


def test_a_webhook_that_does_not_speak_http_never_stops_the_watch(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0"])
    junk = socket.socket()
    junk.bind(("127.0.0.1", 0))
    junk.listen(8)

    def answer_junk() -> None:
        for _ in range(3):
            try:
                conn, _addr = junk.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.sendall(b"SSH-2.0-not-http\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_junk, daemon=True).start()
    try:
        port = junk.getsockname()[1]
        write_cfg(tmp_path, src.url, dst.url, f"webhook:\n- http://127.0.0.1:{port}/hook\n")
        result = cli("watch", "demo/app", "--once")
    finally:
        junk.close()
    assert result.returncode == 0, result.output
    assert "not an HTTP answer" in result.stderr and "internal error" not in result.output
    assert target_digest(dst.url, "demo/app", "1.0") is not None


def test_lines_watch_cannot_follow_are_refused(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    write_cfg(tmp_path, src.url, dst.url)
    digest = "sha256:" + "a" * 64
    (tmp_path / "list.txt").write_text(f"demo/app@{digest}\ndemo/app:1.0 -> other/app:stable\n")
    result = cli("watch", "-l", "list.txt", "--once")
    assert result.returncode == 2, result.output
    assert "list.txt, line 1: a digest never changes" in result.stderr
    assert "list.txt, line 2: this line follows many tags" in result.stderr
    bad = cli("watch", "demo/app", "--once", "--tags", "(")
    assert bad.returncode == 2 and "is not a regular expression" in bad.stderr
    assert "Traceback" not in result.output + bad.output


def test_a_missing_repository_is_a_warning_and_tags_regex_filters(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0", "1.1-debug", "2.0"])
    write_cfg(tmp_path, src.url, dst.url)
    (tmp_path / "list.txt").write_text("demo/app:1.0\nnot/there\n")
    result = cli("watch", "-l", "list.txt", "--once", "--tags", r"^\d+\.\d+$", "--json")
    assert result.returncode == 0, result.output
    (doc,) = rounds(result)
    assert doc["copied"] == 2 and doc["error"] is None
    assert target_digest(dst.url, "demo/app", "1.1-debug") is None
    assert {"level": "warning", "text": "line 2: not/there is not in the source yet"} in doc[
        "messages"
    ]


def test_dingtalk_gets_a_signed_markdown_message_per_image(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0", "1.1"])
    secret = "SEC0123456789abcdef-secret"
    with Receiver(answer=b'{"errcode":0,"errmsg":"ok"}') as ding:
        write_cfg(
            tmp_path,
            src.url,
            dst.url,
            "dingtalk:\n- token: TOKEN-abc-123\n  secret: ${DING_SECRET}\n",
        )
        env = {"IMAGEFERRY_DINGTALK_URL": f"{ding.url}/robot/send", "DING_SECRET": secret}
        result = cli("watch", "demo/app:1.1", "--once", "--log", "w.log", env=env)
        assert result.returncode == 0, result.output
        (sent,) = ding.received
    assert sent.path == "/robot/send"
    assert sent.query["access_token"] == ["TOKEN-abc-123"]
    (timestamp,) = sent.query["timestamp"]
    # as DingTalk documents it: HmacSHA256 over "<timestamp>\n<secret>", keyed with the
    # secret, Base64, then URL-encoded (parse_qs above undid the URL encoding)
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    assert sent.query["sign"] == [base64.b64encode(mac.digest()).decode()]
    assert abs(int(timestamp) / 1000 - time.time()) < 3600  # DingTalk's allowed skew
    assert sent.headers["Content-Type"].startswith("application/json")
    body = sent.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == f"imageferry: copied {dst.host}/demo/app:1.1"
    assert f"{src.host}/demo/app:1.1 → {dst.host}/demo/app:1.1" in body["markdown"]["text"]
    log = (tmp_path / "w.log").read_text()
    for hidden in (secret, "TOKEN-abc-123", sent.query["sign"][0]):
        assert hidden not in result.output and hidden not in log


def test_dingtalk_refusal_is_a_warning(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0"])
    with Receiver(answer=b'{"errcode":310000,"errmsg":"sign not match"}') as ding:
        write_cfg(tmp_path, src.url, dst.url, "dingtalk:\n- token: T0KEN\n  secret: S3CRET\n")
        env = {"IMAGEFERRY_DINGTALK_URL": f"{ding.url}/robot/send"}
        result = cli("watch", "demo/app", "--once", env=env)
    assert result.returncode == 0, result.output
    assert "DingTalk robot 1 failed after 3 attempts (DingTalk error 310000" in result.stderr
    assert "T0KEN" not in result.output and "S3CRET" not in result.output


def _first_only(method: str, fragment: str):
    """A fault rule: the first ``method`` request on a path holding ``fragment`` gets 403."""
    return lambda m, p, n: Fault(status=403) if m == method and fragment in p and n == 1 else None


@pytest.mark.parametrize(
    ("faulty", "rule"),
    [
        ("target", _first_only("PUT", "/manifests/")),  # round 1: the image fails
        ("source", _first_only("GET", "/tags/list")),  # round 1: the round itself fails
    ],
)
def test_window_runs_the_watch_on_a_thread_failures_are_retried_and_stop_ends_it(
    new_registry, tmp_path, faulty, rule
):
    src, dst = new_registry(), new_registry()
    digests = push_tags(src.url, "demo/app", ["1.0"])
    proxy = FaultProxy((dst if faulty == "target" else src).port, rule)
    urls = (proxy.url, dst.url) if faulty == "source" else (src.url, proxy.url)
    config = Config()
    entries = parse_list("demo/app", "window").entries
    settings = WatchSettings(interval=1, history=tmp_path / "history.json")
    job = BackgroundJob(
        "watch",
        lambda events, cancel: run_watch(
            config,
            entries,
            RegistryConfig(registry=urls[0]),
            [RegistryConfig(registry=urls[1], name="site")],
            transfer_options(config),
            settings,
            events,
            cancel,
        ),
    ).start()
    try:
        seen: list[WatchRound] = []
        deadline = time.monotonic() + 30
        while not any(r.copied for r in seen):
            assert job.running and time.monotonic() < deadline, (seen, job.error, job.crashed)
            seen += [e for e in job.drain() if isinstance(e, WatchRound)]
            time.sleep(0.05)
        first = seen[0]
        assert first.next_at is not None
        if faulty == "target":
            assert first.failed == 1 and first.error is None
        else:
            assert first.error is not None and "HTTP 403" in first.error
        assert target_digest(dst.url, "demo/app", "1.0") == digests["1.0"]
        job.stop()
        assert job.join(5), "the watch did not stop"
    finally:
        job.stop()
        job.join(30)
        proxy.stop()
    assert job.error is None and job.crashed is None
    assert job.result is not None and job.result.stopped


def test_renames_and_the_namespace_rewrite_apply_and_are_remembered(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    digests = push_tags(src.url, "demo/app", ["0.1", "1.0", "1.1"])
    write_cfg(tmp_path, src.url, dst.url, "")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(cfg.read_text().replace("name: site\n", "name: site\n  repository: ns\n"))
    line = "demo/app:1.0 -> renamed/app"
    first = cli("watch", line, "--once", "--json")
    assert first.returncode == 0, first.output
    assert rounds(first)[0]["copied"] == 2
    for tag in ("1.0", "1.1"):
        assert target_digest(dst.url, "ns/app", tag) == digests[tag]
    assert target_digest(dst.url, "ns/app", "0.1") is None
    again = cli("watch", line, "--once", "--json")
    assert (rounds(again)[0]["copied"], rounds(again)[0]["skipped"]) == (0, 0)


def test_an_unset_variable_in_a_webhook_matters_only_to_a_watch(new_registry, cli, tmp_path):
    src, dst = new_registry(), new_registry()
    push_tags(src.url, "demo/app", ["1.0"])
    extra = "webhook:\n- ${IMAGEFERRY_NO_SUCH_HOOK}\ndingtalk:\n- token: ${IMAGEFERRY_NO_TOKEN}\n"
    write_cfg(tmp_path, src.url, dst.url, extra)
    copied = cli("copy", "demo/app:1.0")
    assert copied.returncode == 0, copied.output
    watched = cli("watch", "demo/app", "--once")
    assert watched.returncode == 2, watched.output
    assert "webhook[0] refers to ${IMAGEFERRY_NO_SUCH_HOOK}" in watched.stderr
    assert "dingtalk[0].token refers to ${IMAGEFERRY_NO_TOKEN}" in watched.stderr
