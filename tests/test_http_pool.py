"""The HTTP layer under every registry exchange: https through a company proxy's CONNECT
tunnel (with the proxy's own user and password), and kept connections that the server
closed meanwhile."""

from __future__ import annotations

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.core.errors import RegistryError
from imageferry.registry import Registry
from support.faultproxy import Fault, FaultProxy
from support.tls import server_files
from support.tunnelproxy import TunnelProxy
from support.verify import get_manifest


def _copy_through_proxy(password: str, sent: str, source, new_registry, cli, tmp_path):
    """A copy to an https target "site" through a CONNECT proxy that wants the user "corp"
    with ``password``; the proxy address carries ``sent`` as its user:password."""
    target = new_registry(scheme="https", tls=server_files(tmp_path))
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {target.url}\n  ca_file: site-ca.pem\n"
    )
    proxy = TunnelProxy("corp", password)
    url = proxy.url(sent)
    env = {"HTTPS_PROXY": url, "https_proxy": url, "NO_PROXY": "", "no_proxy": ""}
    try:
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site", env=env)
    finally:
        proxy.stop()
    return result, proxy, target.url.removeprefix("https://")


def test_https_registry_through_a_proxy_tunnel_with_the_proxys_credentials(
    source, new_registry, cli, tmp_path
):
    result, proxy, target = _copy_through_proxy(
        "pr0xy:pass", "corp:pr0xy%3Apass", source, new_registry, cli, tmp_path
    )
    assert result.returncode == 0, result.output
    assert proxy.connects and all(
        where == target and creds == "corp:pr0xy:pass" for where, creds in proxy.connects
    ), proxy.connects
    assert "pr0xy" not in result.output


def test_a_proxy_that_refuses_the_tunnel_is_named_with_what_to_fix(
    source, new_registry, cli, tmp_path
):
    result, proxy, target = _copy_through_proxy(
        "right", "corp:wrong", source, new_registry, cli, tmp_path
    )
    assert result.returncode == 1
    proxy_address = proxy.url().removeprefix("http://")
    assert f"the proxy {proxy_address} refused a tunnel" in result.output, result.output
    assert "407 Proxy Authentication Required" in result.output
    assert target in result.output and "HTTPS_PROXY" in result.output
    assert "retrying" not in result.output and "Traceback" not in result.output
    assert "wrong" not in result.output  # the proxy's password is never shown


def test_a_kept_connection_the_registry_closed_is_replaced_without_an_error(source):
    """A registry (or a load balancer before it) closes idle connections; the request sent
    on one as it closes must go again on a new connection, not fail the image."""

    def rule(method: str, path: str, n: int) -> Fault | None:
        dropped = method == "GET" and "/manifests/" in path and n == 2
        return Fault(reset_request_after=0) if dropped else None  # closed, never answered

    proxy = FaultProxy(source.server.port, rule)
    reader = Registry(RegistryConfig(registry=proxy.url))  # no retries of its own
    try:
        first = reader.get_manifest("demo/app0", "1.0")
        second = reader.get_manifest("tools/t0", "latest")
    finally:
        reader.close()
        proxy.stop()
    assert first.raw == get_manifest(source.url, "demo/app0", "1.0")
    assert second.raw == get_manifest(source.url, "tools/t0", "latest")
    assert proxy.count("GET", "/tools/t0/manifests/") == 2  # sent again, once


def test_an_answer_cut_short_by_a_clean_close_is_not_taken_for_whole(source):
    """A load balancer that times out closes mid-blob without a reset: the bytes that came
    are handed on, then the cut is an error (so the reader resumes from there)."""

    def rule(method: str, path: str, n: int) -> Fault | None:
        return Fault(close_after=1000) if method == "GET" and "/blobs/" in path else None

    proxy = FaultProxy(source.server.port, rule)
    reader = Registry(RegistryConfig(registry=proxy.url))
    got = bytearray()
    try:
        layer = max(reader.get_manifest("demo/app0", "1.0").blobs, key=lambda d: d.size)
        assert layer.size > 1000
        with pytest.raises(RegistryError, match="connection broke mid-blob"):
            for chunk in reader.open_blob("demo/app0", layer):
                got += chunk
    finally:
        reader.close()
        proxy.stop()
    assert len(got) == 1000


def test_a_request_that_changes_something_is_never_sent_twice(new_registry):
    """A POST the server may have taken before the connection dropped is not replayed by
    the HTTP layer (a second upload session, a second use of a refresh token)."""
    target = new_registry()

    def rule(method: str, path: str, n: int) -> Fault | None:
        return Fault(reset_request_after=0) if method == "POST" and n == 2 else None

    proxy = FaultProxy(target.port, rule)
    writer = Registry(RegistryConfig(registry=proxy.url), writable=True)
    opening = "/v2/tools/x/blobs/uploads/"
    try:
        writer.session.request("POST", opening, (), ok=(202,))
        with pytest.raises(RegistryError, match="connection failed"):
            writer.session.request("POST", opening, (), ok=(202,))
    finally:
        writer.close()
        proxy.stop()
    assert proxy.count("POST", "/blobs/uploads/") == 2


def test_a_proxy_address_that_is_no_url_is_named_without_its_password(source, cli):
    env = {"HTTP_PROXY": "http://corp:s3cr/et@127.0.0.1:3128", "NO_PROXY": ""}
    env |= {"http_proxy": env["HTTP_PROXY"], "no_proxy": ""}
    result = cli("check", "demo/app0:1.0", "--from", source.url, env=env)
    assert result.returncode == 1
    assert "not a usable URL" in result.output and "%2F" in result.output, result.output
    assert "s3cr" not in result.output and "Traceback" not in result.output
