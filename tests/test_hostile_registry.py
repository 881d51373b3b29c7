"""Hostile registries: every test is an exploit that worked before its fix.

Scripted servers on 127.0.0.1 (support/hostile.py) or the real registry behind
the fault proxy; the client is the real registry client with a small timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import sys
import threading
import time

import pytest
import trustme

from imageferry.core.config import RegistryConfig
from imageferry.core.digest import Digest
from imageferry.core.errors import (
    AuthError,
    DigestMismatchError,
    InputError,
    NotFoundError,
    RegistryError,
    UnsupportedManifestError,
)
from imageferry.core.manifest import OCI_MANIFEST, Descriptor, parse_manifest
from imageferry.registry import Registry
from imageferry.registry.transport import make_ssl_context
from support.faultproxy import Fault, FaultProxy
from support.hostile import Hostile, chunked, drip, flood, reply
from support.tls import server_files

BLOB = b"layer bytes " * 100
PASSWORD = "hunter2-Pa55"


def _manifest(layers: int = 1, salt: str = "") -> bytes:
    layer = {"mediaType": "application/octet-stream", "digest": _sha256(BLOB), "size": len(BLOB)}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**layer, "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [layer] * layers,
        "annotations": {"salt": salt},
    }
    return json.dumps(doc).encode()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def hostile():
    """Factory: start a scripted server (``ca=`` for https); stopped after the test."""
    started: list[Hostile] = []
    stop = threading.Event()

    def make(handler, ca: trustme.CA | None = None) -> Hostile:
        server = Hostile(handler, ca)
        server.stop_event = stop  # type: ignore[attr-defined]
        started.append(server)
        return server

    yield make
    stop.set()
    for server in started:
        server.stop()


def _client(url: str, tmp_path=None, timeout: float = 5, **cfg) -> Registry:
    return Registry(
        RegistryConfig(registry=url, **cfg), config_dir=tmp_path, writable=True, timeout=timeout
    )


def _wait_for(values: list, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not values and time.monotonic() < end:
        time.sleep(0.05)


def test_tags_and_names_that_leave_the_url_are_refused_before_any_request(hostile):
    server = hostile(lambda req: reply(req, 201, headers={"Docker-Content-Digest": "x"}))
    client = _client(server.url)
    manifest = parse_manifest(_manifest(), OCI_MANIFEST, "test")
    for tag in ("1.0/../../../../victim/manifests/latest", "..", "a%2F..", "-x", "a b", "a?b"):
        with pytest.raises(InputError, match="tag"):
            client.put_manifest("demo/app", tag, manifest)
    with pytest.raises(InputError, match="repository"):
        client.get_manifest("demo/../../victim", "latest")
    with pytest.raises(InputError, match="repository"):
        client.mount_blob("demo/app", "x&mount=y", Descriptor("", Digest.parse(_sha256(BLOB)), 1))
    assert server.seen == []


def test_digest_of_every_algorithm_is_checked(hostile, tmp_path):
    good, evil = _manifest(), _manifest(salt="evil")
    sha384 = "sha384:" + hashlib.sha384(good).hexdigest()
    sha512 = "sha512:" + hashlib.sha512(good).hexdigest()
    served = {sha384: good, sha512: evil}

    def handler(req):
        body = served.get(req.path.rsplit("/", 1)[-1])
        reply(req, 200 if body else 404, body or b"", {"Content-Type": OCI_MANIFEST})

    client = _client(hostile(handler).url)
    with pytest.raises(DigestMismatchError, match="sha512"):
        client.get_manifest("pinned/app", sha512)
    assert client.get_manifest("pinned/app", sha384).raw == good
    with pytest.raises(InputError, match="'md5' is not supported"):
        client.get_manifest("pinned/app", "md5:" + hashlib.md5(good).hexdigest())


def _token_registry(hostile, realm: str, ca: trustme.CA | None = None) -> Hostile:
    def handler(req):
        if req.headers.get("Authorization") == "Bearer good-token":
            reply(req, 200, _manifest(), {"Content-Type": OCI_MANIFEST})
        else:
            challenge = f'Bearer realm="{realm}",service="hostile"'
            reply(req, 401, headers={"WWW-Authenticate": challenge})

    return hostile(handler, ca)


def test_https_registry_never_sends_the_password_to_an_http_realm(hostile, tmp_path):
    token = hostile(lambda req: reply(req, 200, json.dumps({"token": "good-token"}).encode()))
    registry = _token_registry(hostile, f"{token.url}/token", trustme.CA())
    ca_file = str(registry.ca_file(tmp_path))
    client = _client(registry.url, tmp_path, user="alice", password=PASSWORD, ca_file=ca_file)
    with pytest.raises(AuthError, match="plain-http token server") as refused:
        client.get_manifest("private/app", "1.0")
    assert PASSWORD not in str(refused.value)
    assert all("Authorization" not in seen.headers for seen in token.seen)
    # without a password there is nothing to leak: an anonymous token is fetched as before
    anonymous = _client(registry.url, tmp_path, ca_file=ca_file)
    assert anonymous.get_manifest("public/app", "1.0").raw == _manifest()


def test_redirect_to_plain_http_on_the_same_host_gets_no_credentials(hostile, tmp_path):
    def handler(req):
        if not isinstance(req.connection, ssl.SSLSocket) and req.path == "/plain/blob":
            reply(req, 200, BLOB)
        elif "Authorization" not in req.headers:
            reply(req, 401, headers={"WWW-Authenticate": 'Basic realm="hostile"'})
        else:
            reply(req, 307, headers={"Location": f"http://127.0.0.1:{server.port}/plain/blob"})

    server = hostile(handler, trustme.CA())
    ca_file = str(server.ca_file(tmp_path))
    client = _client(server.url, tmp_path, user="alice", password=PASSWORD, ca_file=ca_file)
    desc = Descriptor("", Digest.parse(_sha256(BLOB)), len(BLOB))
    assert b"".join(client.open_blob("private/app", desc)) == BLOB
    plain = [seen for seen in server.seen if not seen.tls]
    assert [seen.path for seen in plain] == ["/plain/blob"]
    assert "Authorization" not in plain[0].headers
    assert any("Authorization" in seen.headers for seen in server.seen if seen.tls)


def test_relative_redirect_is_resolved_against_the_request(source):
    client = Registry(RegistryConfig(registry=source.url))
    layer = client.get_manifest("demo/app0", "1.0").blobs[-1]

    def rule(method, path, n):
        if method == "GET" and "/blobs/sha256:" in path and "hop" not in path:
            return Fault(status=307, headers=(("Location", path + "?hop=1"),))
        return None

    proxy = FaultProxy(source.server.port, rule)
    try:
        data = b"".join(_client(proxy.url).open_blob("demo/app0", layer))
    finally:
        proxy.stop()
    assert _sha256(data) == str(layer.digest)
    assert [p for m, p in proxy.log if m == "GET"][-1].endswith("?hop=1")


def test_token_and_error_bodies_are_read_only_as_far_as_they_are_kept(hostile):
    huge = 64 << 20
    token = hostile(lambda req: flood(token, req, 200, huge))
    client = _client(_token_registry(hostile, f"{token.url}/token").url)
    with pytest.raises(RegistryError, match="larger than 1 MiB"):
        client.get_manifest("any/app", "1.0")
    failing = hostile(lambda req: flood(failing, req, 500, huge))
    with pytest.raises(RegistryError, match="HTTP 500"):
        _client(failing.url).get_manifest("any/app", "1.0")
    for server in (token, failing):
        _wait_for(server.sent)
        assert server.sent and server.sent[0] < huge // 2, "the client read the whole flood"


def test_manifest_size_and_entry_limits(hostile):
    big = b'{"layers": [], "pad": "' + b"x" * (9 << 20) + b'"}'
    many = _manifest(layers=10001)
    bodies = {"/v2/big/app/manifests/1": big, "/v2/many/app/manifests/1": many}
    server = hostile(lambda req: chunked(req, bodies[req.path], OCI_MANIFEST))
    client = _client(server.url)
    with pytest.raises(RegistryError, match="larger than 8 MiB"):
        client.get_manifest("big/app", "1")
    with pytest.raises(UnsupportedManifestError, match="10001 layers.*more than 10000"):
        client.get_manifest("many/app", "1")


def test_deeply_nested_json_is_a_clear_error_not_a_crash(hostile):
    deep = b"[" * 100_000 + b"]" * 100_000

    def handler(req):
        if req.path.startswith("/token"):
            reply(req, 200, deep)
        elif "/auth/" in req.path:
            realm = f"http://127.0.0.1:{server.port}/token"
            reply(req, 401, headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})
        elif "/manifests/" in req.path:
            reply(req, 200, deep, {"Content-Type": OCI_MANIFEST})
        else:
            reply(req, 404, deep)

    server = hostile(handler)
    client = _client(server.url)
    with pytest.raises(UnsupportedManifestError, match="nested too deeply"):
        client.get_manifest("deep/app", "1")
    with pytest.raises(NotFoundError, match="HTTP 404"):
        client.open_blob("deep/app", Descriptor("", Digest.parse(_sha256(BLOB)), 1))
    with pytest.raises(RegistryError, match="unreadable answer"):
        client.get_manifest("auth/app", "1")


def _header_drip(req) -> None:
    try:
        req.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            req.wfile.write(b"X")
            req.wfile.flush()
            time.sleep(0.2)
    except OSError:
        req.close_connection = True


@pytest.mark.timeout(60)
def test_slow_drips_and_silent_servers_cost_about_the_timeout(hostile):
    def handler(req):
        if req.path.startswith("/v2/silent/"):
            hostile_server.stop_event.wait(60)
        elif req.command == "HEAD":
            _header_drip(req)
        else:
            drip(req, {"Content-Type": OCI_MANIFEST})

    hostile_server = hostile(handler)
    client = _client(hostile_server.url, timeout=1)
    desc = Descriptor("", Digest.parse(_sha256(BLOB)), len(BLOB))
    with pytest.raises(RegistryError, match="within 1 s") as dripped:
        client.get_manifest("drip/app", "1")
    assert dripped.value.temporary
    with pytest.raises(RegistryError, match="within 1 s"):
        client.has_blob("drip/app", desc)
    with pytest.raises(RegistryError, match="within 1 s"):
        client.get_manifest("silent/app", "1")
    with pytest.raises(RegistryError, match="within 1 s"):
        b"".join(client.open_blob("drip/app", desc))


@pytest.mark.timeout(120)
def test_timeout_from_cfg_yaml_bounds_a_run(hostile, cli, tmp_path):
    server = hostile(lambda req: drip(req, {"Content-Type": OCI_MANIFEST}))
    (tmp_path / "cfg.yaml").write_text(f"source:\n- registry: {server.url}\ntimeout: 1\n")
    result = cli("check", "drip/app:1", "--retries", "0", timeout=90)
    assert result.returncode != 0
    assert "within 1 s" in result.output, result.output


def test_userinfo_in_a_url_never_reaches_a_message_or_the_log(hostile, caplog):
    token = hostile(lambda req: reply(req, 500))
    realm = f"http://tok:s3cret-realm@127.0.0.1:{token.port}/token"
    client = _client(_token_registry(hostile, realm).url)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RegistryError, match="HTTP 500") as failed:
        client.get_manifest("any/app", "1.0")
    message = str(failed.value)
    assert "s3cret-realm" not in message and f"127.0.0.1:{token.port}/token" in message
    assert "s3cret-realm" not in caplog.text
    assert all("Authorization" not in seen.headers for seen in token.seen)


def test_http_and_https_mixups_say_which_scheme_the_port_speaks(new_registry, tmp_path):
    plain = new_registry()
    with pytest.raises(RegistryError, match=f"speaks plain http.*http://{plain.host}"):
        _client(f"https://{plain.host}").get_manifest("demo/app", "1")
    secure = new_registry(scheme="https", tls=server_files(tmp_path, ca_file=None))
    with pytest.raises(RegistryError, match=f"speaks https.*https://{secure.host}"):
        _client(f"http://{secure.host}").get_manifest("demo/app", "1")
    # a HEAD (a target's "what do you hold") has no body to tell: the advice is hedged
    with pytest.raises(RegistryError, match=f"if this port speaks https.*https://{secure.host}"):
        _client(f"http://{secure.host}").manifest_digest("demo/app", "1")


def test_a_trust_store_fallback_is_logged(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "truststore", None)
    caplog.set_level(logging.WARNING)
    make_ssl_context(None, False)
    assert "truststore" in caplog.text and "instead" in caplog.text


def test_index_child_of_another_size_fails_that_image(hostile, new_registry, cli):
    """A child manifest must have the digest and the size its index lists."""
    child = _manifest()
    listed = {"mediaType": OCI_MANIFEST, "digest": _sha256(child), "size": len(child) + 7}
    listed["platform"] = {"os": "linux", "architecture": "amd64"}
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [listed]}
    ).encode()  # fmt: skip

    def handler(req):
        if req.path.endswith("/manifests/1"):
            reply(req, 200, index, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
        elif req.path.endswith(f"/manifests/{_sha256(child)}"):
            reply(req, 200, child, {"Content-Type": OCI_MANIFEST})
        else:
            reply(req, 404 if "/v2/" != req.path.split("?")[0] else 200, b"{}")

    source = hostile(handler)
    target = new_registry()
    result = cli("copy", "multi/app:1", "--from", source.url, "--to", target.url,
                 "--retries", "0", "--json")  # fmt: skip
    assert result.returncode == 1, result.output
    (row,) = result.json()["images"]
    assert row["status"] == "failed" and "its index lists" in row["error"]
