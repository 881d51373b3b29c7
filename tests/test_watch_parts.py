"""Watch's pieces without registries: cfg.yaml keys, the history file, arguments."""

from __future__ import annotations

import json

from imageferry.core.config import load_config
from imageferry.jobs.watch_history import WatchHistory


def test_watch_keys_in_cfg_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "t0k")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "interval: 60\nwebhook: https://hooks.example.com/x/${HOOK_TOKEN}\n"
        "dingtalk:\n- token: abc\n  secret: SECdef\n- token: keyword-only\n"
    )
    config = load_config(cfg)
    assert config.interval == 60
    assert config.webhook == ["https://hooks.example.com/x/t0k"]
    assert [r.token.get_secret_value() for r in config.dingtalk] == ["abc", "keyword-only"]
    assert config.dingtalk[1].secret is None
    assert "SECdef" not in repr(config)


def test_bad_watch_keys_are_located(cli, tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        "interval: 0\nwebhook:\n- ftp://files.example.com/SECRETPATH\ndingtalk:\n- secret: s\n"
    )
    result = cli("watch", "demo/app", "--once")
    assert result.returncode == 2, result.output
    assert "line 1: interval: Input should be greater than or equal to 1" in result.stderr
    assert "line 3: webhook: a webhook must be an http:// or https:// URL" in result.stderr
    assert "dingtalk.0.token: Field required" in result.stderr
    assert "SECRETPATH" not in result.output
    (tmp_path / "cfg.yaml").unlink()
    interval = cli("watch", "demo/app", "--once", "--interval", "0.5")
    assert interval.returncode == 2 and "--interval must be between 1" in interval.stderr


def test_history_round_trip_and_damaged_file(tmp_path):
    path = tmp_path / "sub" / "history.json"
    history, warning = WatchHistory.load(path)
    assert warning is None and history.digest_at("h/r:1") is None
    history.record("h/r:1", "s/r:1", "sha256:" + "1" * 64)
    history.save()
    again, warning = WatchHistory.load(path)
    assert warning is None and again.digest_at("h/r:1") == "sha256:" + "1" * 64
    assert [p.name for p in path.parent.iterdir()] == ["history.json"]  # no temp files left

    for damaged in (b"{not json", b"[]", json.dumps({"format": 99, "delivered": {}}).encode()):
        path.write_bytes(damaged)
        fresh, warning = WatchHistory.load(path)
        assert fresh.delivered == {} and warning and str(path) in warning
