"""The HTTP layer under every registry exchange: https through a company proxy's CONNECT
tunnel (with the proxy's own user and password), and kept connections that the server
closed meanwhile."""

from __future__ import annotations

import trustme

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from support.faultproxy import Fault, FaultProxy
from support.tunnelproxy import TunnelProxy
from support.verify import get_manifest


def _tls_target(new_registry, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    ca.cert_pem.write_to_path(str(tmp_path / "site-ca.pem"))
    target = new_registry(scheme="https", tls=(cert_path, key_path))
    (tmp_path / "cfg.yaml").write_text(
        f"target:\n- name: site\n  registry: {target.url}\n  ca_file: site-ca.pem\n"
    )
    return target


def test_https_registry_through_a_proxy_tunnel_with_the_proxys_credentials(
    source, new_registry, cli, tmp_path
):
    target = _tls_target(new_registry, tmp_path)
    proxy = TunnelProxy("corp", "pr0xy:pass")
    env = {"HTTPS_PROXY": proxy.url("corp:pr0xy%3Apass"), "NO_PROXY": ""}
    env |= {"https_proxy": env["HTTPS_PROXY"], "no_proxy": ""}
    try:
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site", env=env)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert proxy.connects and all(
        where == target.url.removeprefix("https://") and creds == "corp:pr0xy:pass"
        for where, creds in proxy.connects
    ), proxy.connects
    assert "pr0xy" not in result.output


def test_a_proxy_that_refuses_the_tunnel_is_named_with_what_to_fix(
    source, new_registry, cli, tmp_path
):
    target = _tls_target(new_registry, tmp_path)
    proxy = TunnelProxy("corp", "right")
    env = {"HTTPS_PROXY": proxy.url("corp:wrong"), "NO_PROXY": ""}
    env |= {"https_proxy": env["HTTPS_PROXY"], "no_proxy": ""}
    try:
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", "site", env=env)
    finally:
        proxy.stop()
    assert result.returncode == 1
    proxy_address = proxy.url().removeprefix("http://")
    assert f"the proxy {proxy_address} refused a tunnel" in result.output, result.output
    assert "407 Proxy Authentication Required" in result.output
    assert target.url.removeprefix("https://") in result.output
    assert "HTTPS_PROXY" in result.output
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
