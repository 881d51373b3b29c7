"""cfg.yaml: image-transmit files load unchanged; every error is located; secrets stay secret."""

from __future__ import annotations

import pytest

from imageferry.core.config import load_config
from imageferry.core.errors import ConfigError, UnsupportedManifestError
from imageferry.core.manifest import parse_manifest

SEED_CFG = """\
source: # 源仓库信息配置,可以支持多个
- registry: "http://10.45.80.1"
  user: #用户名和密码，如果匿名访问，用户名和密码都留空即可
  password:
target:  # 目标仓库信息配置,可以支持多个
- registry: "http://10.45.46.109"
  user: 
  password: 
  repository: yyyy
maxconn: 5
retries: 2
singlefile: false
cache:
  pathname: cache
  keepdays: 7
  keepsize: 10
"""


def test_image_transmit_config_loads_unchanged(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(SEED_CFG, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.source[0].address.base_url == "http://10.45.80.1"
    assert cfg.target[0].repository == "yyyy" and cfg.target[0].user is None
    assert cfg.maxconn == 5 and cfg.retries == 2 and cfg.cache and cfg.cache.keepsize == 10
    assert cfg.find("target", None).display_name == "10.45.46.109"


def test_errors_name_file_line_and_key(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "source:\n- registry: ftp://x\ntarget:\n- registry: http://ok\n  pasword: p\nmaxconn: 0\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}, line 2: source.0.registry" in text and "http or https" in text
    assert "line 5: target.0.pasword: unknown key" in text
    assert "line 6: maxconn" in text and "greater than or equal to 1" in text


def test_password_never_in_errors(tmp_path, monkeypatch):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "target:\n- registry: http://u:Hunter22@host\n  password: Hunter22\n  user: [1]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "Hunter22" not in str(info.value)
    assert "must not contain a user or password" in str(info.value)


def test_env_password(tmp_path, monkeypatch):
    path = tmp_path / "cfg.yaml"
    path.write_text("target:\n- registry: https://site\n  user: admin\n  password: ${SITE_PW}\n")
    with pytest.raises(ConfigError, match=r"line 4: target.0.password .*SITE_PW.*not set"):
        load_config(path).find("target", None)  # only a registry in use needs it
    monkeypatch.setenv("SITE_PW", "from-env")
    assert load_config(path).target[0].password.get_secret_value() == "from-env"
    assert "from-env" not in repr(load_config(path))


def test_bad_yaml_has_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("source:\n  - registry: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_config(path)


def test_schema1_manifest_refused_with_advice():
    raw = b'{"schemaVersion": 1, "name": "x", "tag": "1", "fsLayers": []}'
    with pytest.raises(UnsupportedManifestError, match="schema 1.*convert"):
        parse_manifest(raw, "application/vnd.docker.distribution.manifest.v1+prettyjws", "reg/x")
