"""The registry editor's jobs: test a connection, read and write cfg.yaml's registries,
passwords kept in the OS keyring — against the real registry and real files."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from imageferry.core.config import RegistryConfig, load_config
from imageferry.core.errors import ConfigError
from imageferry.jobs import registries
from imageferry.jobs.registries import RegistryEntry, read_registries, save_registries
from imageferry.registry import keyring_store
from imageferry.testing.registry_server import free_port, htpasswd_auth

PASSWORD = "s3cret-Pa55word"

SEED = """\
# imageferry settings for the site
source:
# the company registry
- name: company            # optional; default: host
  registry: "http://10.45.80.1"
  user: ""                 # empty = anonymous
target:
- name: site
  registry: 'https://10.45.46.109'
  user: admin
  password: ${SITE_PASSWORD}
  repository: yyyy         # namespace rewrite
maxconn: 5                 # parallel blob transfers
cache:
  pathname: cache          # relative to cfg.yaml
lang: zh_CN
"""


@pytest.fixture
def plain_keyring(tmp_path, monkeypatch):
    """keyrings.alt's PlaintextKeyring in a temporary HOME, here and for the real CLI."""
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    home = tmp_path / "home"
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield env
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring(monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_connection_ok_wrong_password_anonymous_unreachable(new_registry, tmp_path):
    server = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))
    config = registries.Config.model_validate({"path": tmp_path / "cfg.yaml"})

    def check(**keys):
        cfg = RegistryConfig.model_validate({"registry": server.url, **keys})
        return registries.test_connection(config, cfg, timeout=10)

    ok = check(name="site", user="admin", password=PASSWORD)
    assert ok.ok and ok.status == 200 and "site: connected as admin" in ok.message

    wrong = check(user="admin", password="wrong-Pa55")
    assert wrong.reachable and wrong.auth_ok is False and wrong.status == 401
    assert "refused" in wrong.message and "wrong-Pa55" not in wrong.message

    anonymous = check()
    assert anonymous.reachable and anonymous.auth_ok is False
    assert "asks for a user and password" in anonymous.message

    down = check(registry=f"http://127.0.0.1:{free_port()}")
    assert not down.reachable and down.auth_ok is None and "connection failed" in down.message


def test_connection_to_a_silent_server_ends_after_the_timeout(tmp_path):
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        config = registries.Config.model_validate({"path": tmp_path / "cfg.yaml"})
        cfg = RegistryConfig.model_validate({"registry": f"http://127.0.0.1:{port}"})
        report = registries.test_connection(config, cfg, timeout=1)
    assert not report.reachable and "no answer within 1 s" in report.message


def test_save_keeps_comments_other_keys_quoting_and_env(tmp_path, monkeypatch):
    path = tmp_path / "cfg.yaml"
    path.write_text(SEED)
    found = read_registries(path)
    assert found.exists and found.readable
    assert [e.name for e in found.sources] == ["company"]
    site = found.targets[0]
    assert site.password == "${SITE_PASSWORD}" and site.password_is_env
    added = RegistryEntry(registry="http://127.0.0.1:5000", name="lab", user="u", password="p")
    changed = replace(site, user="deployer", ca_file="site-ca.pem")
    save_registries(path, found.sources, [changed, added])

    text = path.read_text()
    for kept in (
        "# imageferry settings for the site",
        "# the company registry",
        "- name: company            # optional; default: host",
        'registry: "http://10.45.80.1"',
        "registry: 'https://10.45.46.109'",
        'user: ""                 # empty = anonymous',
        "password: ${SITE_PASSWORD}",
        "repository: yyyy         # namespace rewrite",
        "maxconn: 5                 # parallel blob transfers",
        "pathname: cache          # relative to cfg.yaml",
        "lang: zh_CN",
    ):
        assert kept in text, kept
    assert text.index("user: deployer") < text.index("password: ${SITE_PASSWORD}")
    assert text.index("ca_file: site-ca.pem") > text.index("repository: yyyy")
    assert [p.name for p in tmp_path.iterdir()] == ["cfg.yaml"]  # no temp file, no backup

    monkeypatch.setenv("SITE_PASSWORD", "from-env")
    config = load_config(path)
    assert config.maxconn == 5 and config.lang == "zh_CN" and config.cache is not None
    assert [t.display_name for t in config.target] == ["site", "lab"]
    assert config.target[0].password.get_secret_value() == "from-env"
    assert config.target[0].user == "deployer" and config.target[1].user == "u"


def test_save_creates_a_missing_file(tmp_path):
    path = tmp_path / "cfg.yaml"
    found = read_registries(path)
    assert not found.exists and found.sources == [] and "does not exist yet" in found.problems[0]
    entry = RegistryEntry(registry="https://registry.example:5000", skiptlsverify=True)
    save_registries(path, [], [entry])
    config = load_config(path)
    assert config.source == [] and config.target[0].address.host == "registry.example:5000"
    assert config.target[0].skiptlsverify is True


def test_wrong_entries_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(SEED)
    bad = [
        RegistryEntry(registry="ftp://x"),
        RegistryEntry(registry="http://h:5000", password="p"),
        RegistryEntry(registry="http://g:5000", repository="UPPER/case"),
        RegistryEntry(registry=""),
    ]
    problems = registries.check_entries(bad, [])
    assert {(p.index, p.field) for p in problems} == {
        (0, "registry"),
        (1, "user"),
        (2, "repository"),
        (3, "registry"),
    }
    twice = [RegistryEntry(registry="http://h:5000"), RegistryEntry(registry="http://h:5000/")]
    assert [(p.index, p.field) for p in registries.check_entries([], twice)] == [(1, "name")]
    with pytest.raises(ConfigError, match="source.0.registry"):
        save_registries(path, bad, [])
    assert path.read_text() == SEED


def test_a_broken_file_is_read_as_far_as_possible(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "source:\n- registry: http://a:5000\n  pasword: x\n- just text\n"
        "target:\n- registry: ftp://b\nmaxconn: 5\n"
    )
    found = read_registries(path)
    assert found.readable and [e.registry for e in found.sources] == ["http://a:5000"]
    assert [e.registry for e in found.targets] == ["ftp://b"]
    text = "\n".join(found.problems)
    assert "line 3: source.0.pasword: unknown key" in text
    assert "line 4: source.1 is not a registry" in text
    assert "line 6: target.0.registry" in text
    fixed = replace(found.targets[0], registry="https://b")
    save_registries(path, found.sources, [fixed])
    config = load_config(path)
    assert config.maxconn == 5 and config.target[0].registry == "https://b"
    assert "pasword" not in path.read_text()


def test_a_file_that_is_not_yaml_starts_empty_and_is_kept_as_bak(tmp_path):
    path = tmp_path / "cfg.yaml"
    broken = "source:\n- registry: [http://a:5000\ntarget: {\n"
    path.write_text(broken)
    found = read_registries(path)
    assert not found.readable and found.sources == [] and found.targets == []
    assert any("not valid YAML" in p and "line" in p for p in found.problems)
    assert any("cfg.yaml.bak" in p for p in found.problems)
    backup = save_registries(path, [], [RegistryEntry(registry="http://c:5000")])
    assert backup == tmp_path / "cfg.yaml.bak" and backup.read_text() == broken
    assert load_config(path).target[0].registry == "http://c:5000"


@pytest.mark.parametrize("encoding", ["gbk", "utf-16"])
def test_a_cfg_yaml_in_a_windows_encoding_is_edited_not_wiped(tmp_path, encoding):
    path = tmp_path / "cfg.yaml"
    text = (
        "# 公司仓库配置\nsource:\n- name: 公司\n  registry: http://a:5000\n"
        "maxconn: 7\nlang: zh_CN\n"
    )
    path.write_bytes(text.encode(encoding))
    found = read_registries(path)
    assert found.readable and [s.name for s in found.sources] == ["公司"]
    backup = save_registries(path, found.sources, [RegistryEntry(registry="http://c:5000")])
    assert backup is None
    config = load_config(path)
    assert config.maxconn == 7 and config.lang == "zh_CN"
    assert [s.registry for s in config.source] == ["http://a:5000"]
    assert "# 公司仓库配置" in path.read_text(encoding="utf-8")


def test_password_kept_in_keyring_is_used_by_copy(
    source, new_registry, cli, tmp_path, plain_keyring
):
    target = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))
    path = tmp_path / "cfg.yaml"
    site = RegistryEntry(
        registry=target.url, name="site", user="admin", password=PASSWORD, keep_in_keyring=True
    )
    save_registries(path, [RegistryEntry(registry=source.url)], [site])
    text = path.read_text()
    assert PASSWORD not in text and "password" not in text and "user: admin" in text
    assert keyring_store.get_password(target.url, "admin") == PASSWORD
    again = read_registries(path).targets[0]
    assert again.from_keyring and again.keep_in_keyring and again.password == PASSWORD

    done = cli("copy", "demo/app0:1.0", "--to", "site", env=plain_keyring)
    assert done.returncode == 0, done.output
    assert PASSWORD not in done.output and PASSWORD not in (tmp_path / "imageferry.log").read_text()
    without = {**plain_keyring, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    refused = cli("copy", "demo/app1:1.0", "--to", "site", env=without)
    assert refused.returncode == 1 and "HTTP 401" in refused.output

    # untick "keep in the keyring": the password moves into cfg.yaml, the keyring forgets it
    save_registries(path, [], [replace(again, keep_in_keyring=False)])
    assert f"password: {PASSWORD}" in path.read_text()
    assert keyring_store.get_password(target.url, "admin") is None


def test_no_keyring_backend_is_said_clearly(no_keyring, tmp_path):
    assert not registries.keyring_available()
    assert keyring_store.get_password("http://h:5000", "u") is None
    keyring_store.delete_password("http://h:5000", "u")
    with pytest.raises(ConfigError, match="OS keyring") as caught:
        keyring_store.set_password("http://h:5000", "u", "pw-123")
    assert "pw-123" not in str(caught.value)
    entry = RegistryEntry(
        registry="http://h:5000", user="u", password="pw-123", keep_in_keyring=True
    )
    with pytest.raises(ConfigError, match="OS keyring"):
        save_registries(tmp_path / "cfg.yaml", [], [entry])
    assert not (tmp_path / "cfg.yaml").exists()


def test_a_plain_file_keyring_counts_only_when_chosen(plain_keyring, monkeypatch):
    assert registries.keyring_available()  # chosen with PYTHON_KEYRING_BACKEND
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    assert not registries.keyring_available()  # found by chance: not an OS keyring
    with pytest.raises(ConfigError, match="this computer has none"):
        keyring_store.set_password("http://h:5000", "u", "pw-123")


def test_save_keeps_crlf_line_endings_and_permissions(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(SEED.replace("\n", "\r\n").encode())
    path.chmod(0o640)
    found = read_registries(path)
    save_registries(path, found.sources, [replace(found.targets[0], user="deployer")])
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") and b"user: deployer\r\n" in raw
    assert path.stat().st_mode & 0o777 == 0o640


def test_an_unwritable_place_is_a_clear_error(tmp_path):
    folder = tmp_path / "cfg.yaml"
    folder.mkdir()  # a folder where the file should be
    found = read_registries(folder)
    assert not found.readable
    with pytest.raises(ConfigError, match="cannot"):
        save_registries(folder, [], [RegistryEntry(registry="http://c:5000")])
