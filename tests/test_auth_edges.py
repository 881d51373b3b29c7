"""Issue 9, auth edge cases, against the real registry in token mode: docker identity
tokens (OAuth2 refresh-token grant), several challenges in one header, a token
endpoint that is down for a moment."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.request

import pytest

from support.faultproxy import Fault, FaultProxy
from support.tokenserver import SERVICE, TokenServer
from support.verify import ACCEPT, get_manifest

PASSWORD = "s3cret-Pa55word"
REFRESH = "refresh-7f3a9c-SECRET"
ACR_USER = "00000000-0000-0000-0000-000000000000"  # what `az acr login` stores


@pytest.fixture
def token_server(tmp_path):
    server = TokenServer(tmp_path / "token", {"robot": PASSWORD}).start()
    yield server
    server.stop()


def _bearer_manifest(server: TokenServer, url: str, repo: str, ref: str) -> bytes:
    """The manifest, read with a token got the plain way (not with imageferry)."""
    basic = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    query = f"service={SERVICE}&scope=repository:{repo}:pull"
    req = urllib.request.Request(
        f"{server.realm}?{query}", headers={"Authorization": f"Basic {basic}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        token = json.load(resp)["token"]
    req = urllib.request.Request(
        f"{url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": ACCEPT, "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def _docker_config(tmp_path, doc: dict) -> None:
    folder = tmp_path / "home" / ".docker"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(doc))


def test_identity_token_from_docker_config_goes_through_the_oauth2_endpoint(
    source, new_registry, cli, tmp_path, token_server
):
    token_server.refresh_tokens[REFRESH] = "robot"
    target = new_registry(auth=token_server.registry_auth())
    auth = base64.b64encode(f"{ACR_USER}:".encode()).decode()
    _docker_config(tmp_path, {"auths": {target.host: {"auth": auth, "identitytoken": REFRESH}}})
    result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url)
    assert result.returncode == 0, result.output
    grants = [r for r in token_server.requests if r.get("grant") == "refresh_token"]
    assert grants and all(r["user"] == "robot" for r in grants)
    assert any(len(r["scopes"]) == 1 and ":pull,push" in r["scopes"][0] for r in grants)
    want = get_manifest(source.url, "demo/app0", "1.0")
    assert _bearer_manifest(token_server, target.url, "demo/app0", "1.0") == want
    log = (tmp_path / "imageferry.log").read_text()
    assert REFRESH not in result.output and REFRESH not in log

    # a credential helper answers "<token>" as the user name for an identity token
    bindir = tmp_path / "bin"
    bindir.mkdir()
    helper = bindir / "docker-credential-acr"
    helper.write_text(
        '#!/bin/sh\nread host\nprintf \'{"ServerURL":"%s","Username":"<token>",'
        f'"Secret":"{REFRESH}"}}\' "$host"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    _docker_config(tmp_path, {"credHelpers": {target.host: "acr"}})
    env = {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    result = cli("copy", "demo/app1:1.0", "--from", source.url, "--to", target.url, env=env)
    assert result.returncode == 0, result.output
    assert REFRESH not in result.output


def test_a_refused_identity_token_says_so(source, new_registry, cli, tmp_path, token_server):
    target = new_registry(auth=token_server.registry_auth())
    _docker_config(tmp_path, {"auths": {target.host: {"identitytoken": "expired-token"}}})
    result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url)
    assert result.returncode == 1
    assert "refused the identity token" in result.output and "config.json" in result.output
    assert "expired-token" not in result.output and "Traceback" not in result.output


def test_several_challenges_in_one_header(source, new_registry, cli, tmp_path, token_server):
    target = new_registry(auth=token_server.registry_auth())
    both = f'Bearer realm="{token_server.realm}",service="{SERVICE}", Basic realm="imageferry-test"'
    first = Fault(status=401, headers=(("WWW-Authenticate", both),))
    proxy = FaultProxy(target.port, lambda m, p, n: first if len(proxy.log) == 1 else None)
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {proxy.url}\n  user: robot\n  password: {PASSWORD}\n"
    )
    try:
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site")
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert any(r.get("user") == "robot" for r in token_server.requests)


def test_a_token_endpoint_that_is_down_is_retried(
    source, new_registry, cli, tmp_path, token_server
):
    target = new_registry(auth=token_server.registry_auth())
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {target.url}\n  user: robot\n"
        f"  password: {PASSWORD}\nretries: 2\n"
    )
    token_server.fail_next = 2
    result = cli("copy", "tools/t0:latest", "--from", source.url, "--to", "site")
    assert result.returncode == 0, result.output
    assert sum(1 for r in token_server.requests if r.get("failed")) == 2
    want = get_manifest(source.url, "tools/t0", "latest")
    assert _bearer_manifest(token_server, target.url, "tools/t0", "latest") == want
