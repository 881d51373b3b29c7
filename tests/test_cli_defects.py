"""Defects a new user met on the command line (issue 16): each behaves as a user expects now."""

from __future__ import annotations

import json
import subprocess
import sys

from support.verify import get_manifest


def test_check_that_cannot_reach_a_target_is_not_a_pass(source, cli):
    result = cli("check", "demo/app0:1.0", "--from", source.url, "--to", "http://127.0.0.1:1")
    assert result.returncode == 1, result.output
    assert "CANNOT CHECK" in result.stdout
    assert "1 target lookup(s) failed" in result.stdout


def test_check_against_a_target_passes_only_when_it_holds_every_image(source, new_registry, cli):
    target = new_registry()
    args = ("check", "demo/app0:1.0", "demo/app1:1.0", "--from", source.url, "--to", target.url)
    before = cli(*args)
    assert before.returncode == 1, before.output
    assert "2 not there" in before.stdout
    assert cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url).returncode == 0
    half = cli(*args, "--json")
    assert half.returncode == 1 and [r["ok"] for r in half.json()["images"]] == [True, False]
    assert cli("copy", "demo/app1:1.0", "--from", source.url, "--to", target.url).returncode == 0
    after = cli(*args)
    assert after.returncode == 0, after.output
    assert "on the target(s): 2 same" in after.stdout


def test_not_done_list_keeps_renames_and_line_numbers(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text("demo/app0:1.0\nnothere:1 -> renamed/x:2\n")
    result = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url)
    assert result.returncode == 1, result.output
    not_done = result.stdout.split("not done", 1)[1]
    assert "  nothere:1 -> renamed/x:2    # list.txt, line 2" in not_done
    assert "demo/app0" not in not_done
    doc = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url, "--json").json()
    failed = [r for r in doc["images"] if r["status"] == "failed"]
    assert [r["text"] for r in failed] == ["nothere:1 -> renamed/x:2"]
    assert failed[0]["error"].startswith("not found in the source (")


def test_an_empty_share_is_a_successful_no_op(source, new_registry, cli, tmp_path):
    target = new_registry()
    (tmp_path / "list.txt").write_text(source.list_text())  # 12 lines
    for command in (["copy", "--to", target.url], ["save", "-o", "pkg"], ["check"]):
        cmd = [command[0], "-l", "list.txt", "--from", source.url, "--shard", "13/20"]
        result = cli(*cmd, *command[1:], "--json")
        assert result.returncode == 0, result.output
        doc = result.json()
        assert doc["ok"] is True and doc["images"] == []
    assert not (tmp_path / "pkg").exists() or not list((tmp_path / "pkg").rglob("*_meta.yaml"))


def test_json_errors_are_one_object_on_stdout(cli, tmp_path):
    (tmp_path / "list.txt").write_text("UPPER/case:1\n")
    result = cli("copy", "-l", "list.txt", "--from", "http://127.0.0.1:1", "--to", "x", "--json")
    assert result.returncode == 2
    doc = result.json()
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["command"] == "copy"
    assert "line 1" in doc["error"]


def test_a_data_file_given_instead_of_the_meta_file_is_named(source, cli, tmp_path):
    saved = cli("save", "demo/app0:1.0", "--from", source.url, "-o", "pkg", "--json")
    assert saved.returncode == 0, saved.output
    meta = saved.json()["package"]
    data = next(p for p in (tmp_path / "pkg").rglob("*_0.tar"))
    for command in (["load", str(data), "--to", "http://127.0.0.1:1"], ["check", str(data)]):
        result = cli(*command)
        assert result.returncode == 2, result.output
        assert "give the *_meta.yaml file" in result.stderr
        assert meta.rsplit("/", 1)[-1] in result.stderr  # the meta file beside it is named
        assert "internal error" not in result.output


def test_closed_output_pipe_ends_quietly(source, tmp_path):
    check = subprocess.Popen(
        [sys.executable, "-m", "imageferry", "check", "--from", source.url, "-l", "-"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-c", "1"], stdin=check.stdout, stdout=subprocess.DEVNULL)
    assert check.stdout is not None
    check.stdout.close()  # only head reads it now
    lines = "".join(f"demo/app{i % 4}:1.0\n" for i in range(400))
    _, err = check.communicate(lines.encode(), timeout=120)
    head.wait(timeout=30)
    assert b"Traceback" not in err and b"internal error" not in err, err.decode()
    assert check.returncode in (0, 141)


def test_same_target_twice_is_one_target(source, new_registry, cli):
    target = new_registry()
    result = cli(
        "copy",
        "demo/app0:1.0",
        "--from",
        source.url,
        "--to",
        target.url,
        "--to",
        target.url,
        "--json",
    )
    assert result.returncode == 0, result.output
    assert len(result.json()["images"]) == 1
    assert get_manifest(target.url, "demo/app0", "1.0") is not None


def test_output_in_a_narrow_code_page_never_breaks(cli, tmp_path):
    """Windows writes redirected output in its ANSI code page: a Chinese path must not crash."""
    missing = tmp_path / "交付" / "x_meta.yaml"
    result = cli("check", str(missing), "--json", env={"PYTHONIOENCODING": "cp1252"})
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    doc = result.json()
    assert doc["ok"] is False and "交付" in doc["error"]


def test_a_list_piped_in_utf16_is_read(source, cli):
    text = "demo/app0:1.0\n"
    check = subprocess.run(
        [sys.executable, "-m", "imageferry", "check", "--from", source.url, "-l", "-", "--json"],
        input=b"\xff\xfe" + text.encode("utf-16-le"),
        capture_output=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr.decode()
    assert json.loads(check.stdout)["images"][0]["digest"]


def test_check_with_platform_verifies_a_platform_copy(source, new_registry, cli):
    target = new_registry()
    args = ("multi/arch:1", "--from", source.url, "--to", target.url, "--platform", "linux/arm64")
    assert cli("copy", *args).returncode == 0
    plain = cli("check", *args[:-2])
    assert plain.returncode == 1 and "has a different image" in plain.stdout  # the whole index
    result = cli("check", *args)
    assert result.returncode == 0, result.output
    assert "has it (same digest)" in result.stdout


def test_the_cli_speaks_chinese_when_asked(source, cli, tmp_path):
    by_flag = cli("check", "demo/app0:1.0", "no/such:1", "--from", source.url, "--lang", "zh_CN")
    assert by_flag.returncode == 1
    assert "2 个镜像，1 个存在，1 个缺失" in by_flag.stdout
    (tmp_path / "cfg.yaml").write_text(f"source:\n- registry: {source.url}\nlang: zh_CN\n")
    by_cfg = cli("copy", "demo/app0:1.0", "--to", "http://127.0.0.1:1", "--retries", "0")
    assert "未完成" in by_cfg.stdout and "第 1 行" in by_cfg.stdout
    english = cli("copy", "demo/app0:1.0", "--to", "http://127.0.0.1:1", "--retries", "0",
                  "--lang", "en_US")  # fmt: skip
    assert "not done" in english.stdout


def test_a_package_folder_that_cannot_be_made_is_a_message(source, cli, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = cli("save", "demo/app0:1.0", "--from", source.url, "-o", "a-file/packages")
    assert result.returncode == 2, result.output
    assert "cannot make the package folder" in result.stderr and "-o" in result.stderr
    assert "internal error" not in result.output
