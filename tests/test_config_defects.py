"""cfg.yaml, image lists and credential sources: user input gets a message, never a traceback."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys

import pytest
import trustme

from imageferry.core import textfile
from imageferry.core.config import load_config
from imageferry.core.errors import ConfigError, InputError
from imageferry.core.filenames import check_file_prefix
from imageferry.core.imagelist import parse_image_list
from imageferry.registry import credentials
from imageferry.testing.registry_server import htpasswd_auth

CFG = """\
source: # 源仓库信息配置,可以支持多个
- name: 公司仓库
  registry: "http://10.45.80.1"
target:  # 目标仓库信息配置,可以支持多个
- registry: "http://10.45.46.109"
  repository: yyyy
"""


@pytest.mark.parametrize("encoding", ["gbk", "utf-16", "utf-8-sig", "utf-16-be"])
def test_cfg_saved_by_windows_editors_loads(tmp_path, encoding):
    path = tmp_path / "cfg.yaml"
    data = CFG.encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    cfg = load_config(path)
    assert cfg.source[0].display_name == "公司仓库"
    assert cfg.target[0].repository == "yyyy"


def test_cfg_in_the_ansi_code_page(tmp_path, monkeypatch):
    path = tmp_path / "cfg.yaml"
    path.write_bytes("source:\n- name: café\n  registry: http://h\n".encode("cp1252"))
    monkeypatch.setattr(textfile, "ansi_encoding", lambda: "cp1252")  # a Western Windows
    assert load_config(path).source[0].name == "café"


def test_cfg_in_no_known_encoding_is_a_message(tmp_path, cli):
    (tmp_path / "cfg.yaml").write_bytes(b"source:\n- name: caf\xe9\n  registry: http://h\n")
    done = cli("check", "demo/app0:1.0")
    assert done.returncode == 2, done.output
    assert "cfg.yaml, line 2: not UTF-8 text" in done.stderr and "save it as UTF-8" in done.stderr
    assert "internal error" not in done.output


def test_utf16_image_list(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes("# 镜像\r\nteam/app:1.2\r\nlibrary/x -> y:2\r\n".encode("utf-16"))
    entries = parse_image_list(textfile.read_text_file(path), str(path))
    assert [str(e.source) for e in entries] == ["team/app:1.2", "library/x:latest"]
    assert entries[1].rename is not None and str(entries[1].rename) == "y:2"
    with pytest.raises(InputError, match="is a folder"):
        textfile.read_text_file(tmp_path)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("key", "holds a private key, not a certificate"),
        (b"\x00\x01garbage\xff", "holds no readable certificate"),
        (None, "is a folder"),
    ],
)
def test_bad_ca_file_names_the_cfg_line(tmp_path, source, cli, content, why):
    ca = trustme.CA()
    bad = tmp_path / "bad.pem"
    if content == "key":
        ca.private_key_pem.write_to_path(str(bad))
    elif content is None:
        bad.mkdir()
    else:
        bad.write_bytes(content)
    (tmp_path / "cfg.yaml").write_text(
        "target:\n- name: site\n  registry: https://127.0.0.1:9\n  ca_file: bad.pem\n"
    )
    done = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site")
    assert done.returncode == 2, done.output
    assert f"cfg.yaml, line 4: target.0.ca_file: {bad} {why}" in done.stderr


@pytest.mark.parametrize(
    "prefix", ["../esc", "a/b", "a\\b", "C:x", "CON", "nul.txt", "a\x01b", "", "x.", ".."]
)
def test_prefix_must_be_a_plain_name(prefix):
    with pytest.raises(InputError, match="prefix"):
        check_file_prefix(prefix)


def test_outprefix_in_cfg_is_checked(tmp_path):
    assert check_file_prefix("site-2024.v1_img") == "site-2024.v1_img"
    path = tmp_path / "cfg.yaml"
    path.write_text("maxconn: 3\noutprefix: ../esc\n")
    with pytest.raises(ConfigError, match=r"line 2: outprefix: .*'\.\./esc'"):
        load_config(path)


def test_unset_variable_of_an_unused_registry_blocks_nothing(tmp_path, source, cli):
    (tmp_path / "cfg.yaml").write_text(
        "target:\n- name: other\n  registry: http://127.0.0.1:9\n  user: admin\n"
        "  password: ${IMAGEFERRY_UNSET_PW}\n"
    )
    done = cli("check", "demo/app0:1.0", "--from", source.url)
    assert done.returncode == 0, done.output
    used = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "other")
    assert used.returncode == 2, used.output
    assert "cfg.yaml, line 5: target.0.password refers to ${IMAGEFERRY_UNSET_PW}" in used.stderr


def test_auth_error_names_docker_config_json(source, new_registry, cli, tmp_path):
    target = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", "right-Pa55"))
    home = tmp_path / "home" / ".docker"
    home.mkdir(parents=True)
    auth = base64.b64encode(b"admin:wrong-Pa55").decode()
    (home / "config.json").write_text(json.dumps({"auths": {target.host: {"auth": auth}}}))
    done = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url)
    assert done.returncode == 1, done.output
    assert f"check user and password in docker's {home / 'config.json'}" in done.output
    assert "cfg.yaml" not in done.output and "wrong-Pa55" not in done.output


@pytest.mark.parametrize("broken", ["{not json", "[1, 2]", '{"auths": [1]}'])
def test_broken_docker_config_json_is_a_warning(tmp_path, monkeypatch, caplog, broken):
    (tmp_path / "config.json").write_text(broken)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        assert credentials.docker_credentials("127.0.0.1:5000") is None
    if broken.startswith('{"auths"'):
        return  # valid JSON, just an unusable section: nothing to find, no crash
    assert str(tmp_path / "config.json") in caplog.text


def test_registry_with_a_path_points_at_repository(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("target:\n- registry: http://host/project\n")
    with pytest.raises(ConfigError, match=r"line 2: .*put the namespace in 'repository: project'"):
        load_config(path)


def test_password_in_a_url_is_refused_without_echo(tmp_path, cli):
    secret = "http://alice:s3cr3t-Pw@127.0.0.1:9"
    for args in (["--from", secret], ["--from", "http://127.0.0.1:9", "--to", secret]):
        done = cli("check", "a/b:1", *args)
        assert done.returncode == 2, done.output
        assert "s3cr3t" not in done.output and "docker login" in done.stderr
    (tmp_path / "cfg.yaml").write_text("source:\n- registry: http://alice:s3cr3t-Pw@host\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "cfg.yaml")
    assert "s3cr3t" not in str(info.value) and "docker login" in str(info.value)
    assert "line 2: source.0.registry" in str(info.value)


def test_messages_for_a_folder_and_an_empty_cfg(tmp_path, cli):
    folder = cli("check", "a/b:1", "-c", str(tmp_path))
    assert folder.returncode == 2 and "is a folder" in folder.stderr, folder.output
    (tmp_path / "cfg.yaml").write_text("maxconn: 3\n")
    empty = cli("check", "a/b:1")
    assert empty.returncode == 2, empty.output
    assert "none configured)" not in empty.stderr and "no source is configured" in empty.stderr


def test_credential_helper_gets_no_window_on_windows(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(subprocess, "CREATE_NO_WINDOW", 0x08000000, raising=False)
    options = credentials.helper_run_options()
    assert options["creationflags"] == 0x08000000 and "stdin" not in options


def _helper(tmp_path, body: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    helper = bindir / "docker-credential-fake"
    helper.write_text("#!/bin/sh\n" + body)
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.skipif(os.name == "nt", reason="a shell-script helper")
def test_credential_helper_hang_times_out(tmp_path, monkeypatch):
    for key, value in _helper(tmp_path, "exec sleep 20\n").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(credentials, "HELPER_TIMEOUT", 0.5, raising=False)
    with pytest.raises(ConfigError, match="docker-credential-fake .*did not answer"):
        credentials.docker_credentials("127.0.0.1:5000")


@pytest.mark.skipif(os.name == "nt", reason="a shell-script helper")
def test_credential_helper_runs_without_stdin(tmp_path, monkeypatch):
    body = 'read host\nprintf \'{"Username":"u","Secret":"p"}\'\n'
    for key, value in _helper(tmp_path, body).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "stdin", None)  # a windowed program
    found = credentials.docker_credentials("127.0.0.1:5000")
    assert found is not None and (found.user, found.password) == ("u", "p")
