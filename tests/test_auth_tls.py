"""Basic and token auth, TLS with a test CA, docker's config.json — against the real registry."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from imageferry.testing.registry_server import htpasswd_auth
from support.tls import server_files
from support.tokenserver import TokenServer
from support.verify import get_manifest

PASSWORD = "s3cret-Pa55word"


def _cfg(tmp_path, text: str) -> None:
    (tmp_path / "cfg.yaml").write_text(text)


def _basic_get(url: str, repo: str, ref: str, user: str, password: str) -> bytes:
    import urllib.request

    from support.verify import ACCEPT

    req = urllib.request.Request(
        f"{url}/v2/{repo}/manifests/{ref}",
        headers={
            "Accept": ACCEPT,
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def test_basic_auth_target(source, new_registry, cli, tmp_path):
    target = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))
    _cfg(
        tmp_path,
        f"""
source:
- registry: "{source.url}"
target:
- name: site
  registry: "{target.url}"
  user: admin
  password: ${{SITE_PASSWORD}}
""",
    )
    result = cli(
        "copy", "demo/app0:1.0", "multi/arch:1", "--to", "site", env={"SITE_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.output
    got = _basic_get(target.url, "multi/arch", "1", "admin", PASSWORD)
    assert got == get_manifest(source.url, "multi/arch", "1")

    wrong = cli("copy", "demo/app1:1.0", "--to", "site", env={"SITE_PASSWORD": "wrong-Pa55"})
    assert wrong.returncode == 1
    assert "HTTP 401" in wrong.output and "check user and password" in wrong.output
    assert "wrong-Pa55" not in wrong.output
    log = (tmp_path / "imageferry.log").read_text()
    assert PASSWORD not in log and "wrong-Pa55" not in log

    unset = cli("copy", "demo/app1:1.0", "--to", "site")
    assert unset.returncode == 2 and "SITE_PASSWORD" in unset.stderr


@pytest.fixture
def token_server(tmp_path):
    server = TokenServer(tmp_path / "token", {"robot": PASSWORD}).start()
    yield server
    server.stop()


def test_token_auth_both_sides_with_mounts(source, new_registry, cli, tmp_path, token_server):
    src = new_registry(auth=token_server.registry_auth())
    dst = new_registry(auth=token_server.registry_auth())
    _cfg(
        tmp_path,
        f"""
source:
- name: company
  registry: {src.url}
  user: robot
  password: {PASSWORD}
target:
- name: site
  registry: {dst.url}
  user: robot
  password: {PASSWORD}
""",
    )
    # seed the token-protected source from the plain one, then copy on to the target
    seed = cli("copy", *[s.line for s in source.samples], "--from", source.url, "--to", "company")
    assert seed.returncode == 0, seed.output
    before = len(token_server.requests)
    result = cli(
        "copy", *[s.line for s in source.samples], "--from", "company", "--to", "site", "--json"
    )
    assert result.returncode == 0, result.output
    doc = result.json()
    assert doc["blobs"]["mounted"] > 0
    requests = token_server.requests[before:]
    # tokens are cached per scope set: far fewer token requests than registry requests
    assert len(requests) <= 3 * len(source.samples) + doc["blobs"]["mounted"] + 4
    assert any(len(r["scopes"]) == 2 for r in requests), "a mount asks for two scopes at once"
    assert all(r["user"] == "robot" for r in requests)
    lines = [s.line for s in source.samples]
    check = cli("check", *lines, "--from", source.url, "--to", "site")
    assert check.stdout.count("has it (same digest)") == len(lines), check.output

    (tmp_path / "empty.yaml").write_text("source: []\n")
    anonymous = cli("check", "demo/app0:1.0", "--from", src.url, "-c", "empty.yaml")
    assert anonymous.returncode == 1
    assert "HTTP 401" in anonymous.stdout or "HTTP 401" in anonymous.stderr


def test_tls_with_ca_file_and_skip_verify(source, new_registry, cli, tmp_path):
    target = new_registry(scheme="https", tls=server_files(tmp_path))

    _cfg(tmp_path, f"target:\n- name: site\n  registry: {target.url}\n")
    refused = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site")
    assert refused.returncode == 1
    assert "TLS failed" in refused.output and "ca_file" in refused.output

    _cfg(tmp_path, f"target:\n- name: site\n  registry: {target.url}\n  ca_file: site-ca.pem\n")
    ok = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site")
    assert ok.returncode == 0, ok.output

    _cfg(tmp_path, f"target:\n- name: site\n  registry: {target.url}\n  skiptlsverify: true\n")
    skipped = cli("copy", "tools/t0:latest", "--from", source.url, "--to", "site", "--json")
    assert skipped.returncode == 0, skipped.output
    check = cli("check", "demo/app0:1.0", "tools/t0:latest", "--from", source.url, "--to", "site")
    assert check.stdout.count("has it (same digest)") == 2, check.output


def test_credentials_from_docker_config(source, new_registry, cli, tmp_path):
    target = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))
    home = tmp_path / "home" / ".docker"
    home.mkdir(parents=True)
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    (home / "config.json").write_text(json.dumps({"auths": {target.host: {"auth": auth}}}))
    result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url)
    assert result.returncode == 0, result.output

    # a credential helper, as docker-credential-* programs answer
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-fake"
    helper.write_text(
        "#!/bin/sh\nread host\n"
        f'printf \'{{"ServerURL":"%s","Username":"admin","Secret":"{PASSWORD}"}}\' "$host"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    (home / "config.json").write_text(json.dumps({"credHelpers": {target.host: "fake"}}))
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    result = cli("copy", "demo/app1:1.0", "--from", source.url, "--to", target.url, env=env)
    assert result.returncode == 0, result.output
    for repo in ("demo/app0", "demo/app1"):
        pushed = _basic_get(target.url, repo, "1.0", "admin", PASSWORD)
        assert pushed == get_manifest(source.url, repo, "1.0")


def test_short_lived_tokens_are_refreshed(source, new_registry, cli, tmp_path):
    from support.faultproxy import Fault, FaultProxy

    tokens = TokenServer(tmp_path / "short", {"robot": PASSWORD}, lifetime=2).start()
    target = new_registry(auth=tokens.registry_auth())
    slow = FaultProxy(
        source.server.port, lambda m, p, n: Fault(rate=60_000) if "/blobs/" in p else None
    )
    _cfg(
        tmp_path,
        f"target:\n- name: site\n  registry: {target.url}\n  user: robot\n  password: {PASSWORD}\n",
    )
    try:
        result = cli(
            "copy", "demo/app0:1.0", "demo/app1:1.0", "--from", slow.url, "--to", "site", "-j", "1"
        )
        check = cli("check", "demo/app0:1.0", "demo/app1:1.0", "--from", source.url, "--to", "site")
    finally:
        slow.stop()
        tokens.stop()
    assert result.returncode == 0, result.output
    assert check.stdout.count("has it (same digest)") == 2, check.output
    per_scope: dict[tuple[str, ...], int] = {}
    for r in tokens.requests:
        key = tuple(r["scopes"])
        per_scope[key] = per_scope.get(key, 0) + 1
    assert max(per_scope.values()) >= 2, per_scope  # the same scope was fetched again


def test_blob_redirect_to_other_host_gets_no_credentials(source, new_registry, cli, tmp_path):
    """Registries hand blobs off to object storage: follow, but never send Authorization there."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from support.faultproxy import Fault, FaultProxy

    seen: list[str | None] = []

    class Storage(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            repo, digest = self.path.removeprefix("/store/").rsplit("/", 1)
            with urllib.request.urlopen(f"{source.url}/v2/{repo}/blobs/{digest}") as resp:
                data = resp.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    storage = ThreadingHTTPServer(("127.0.0.2", 0), Storage)
    threading.Thread(target=storage.serve_forever, daemon=True).start()
    store = f"http://127.0.0.2:{storage.server_address[1]}/store"
    protected = new_registry(auth=htpasswd_auth(tmp_path / "auth", "admin", PASSWORD))

    def redirect(method, path, n):
        if method == "GET" and "/blobs/sha256:" in path:
            repo, digest = path.removeprefix("/v2/").split("/blobs/")
            return Fault(status=307, headers=(("Location", f"{store}/{repo}/{digest}"),))
        return None

    proxy = FaultProxy(protected.port, redirect)
    _cfg(
        tmp_path,
        f"source:\n- name: company\n  registry: {proxy.url}\n  user: admin\n"
        f"  password: {PASSWORD}\n",
    )
    target = new_registry()
    try:
        seeded = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "company")
        assert seeded.returncode == 0, seeded.output
        result = cli("copy", "demo/app0:1.0", "--from", "company", "--to", target.url)
    finally:
        proxy.stop()
        storage.shutdown()
    assert result.returncode == 0, result.output
    assert seen and all(auth is None for auth in seen), seen
    assert get_manifest(target.url, "demo/app0", "1.0") == get_manifest(
        source.url, "demo/app0", "1.0"
    )
