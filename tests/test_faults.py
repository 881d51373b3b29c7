"""Scripted network faults from a loopback proxy in front of the real registry."""

from __future__ import annotations

import pytest

from support.faultproxy import Fault, FaultProxy
from support.verify import assert_image_copied


@pytest.fixture
def proxy_for():
    proxies: list[FaultProxy] = []

    def make(server, rule) -> FaultProxy:
        proxy = FaultProxy(server.port, rule)
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.stop()


def _copy_all(cli, source, src_url, dst_url):
    lines = [s.line for s in source.samples]
    return cli(
        "copy", *lines, "--from", src_url, "--to", dst_url, "--json", "-j", "3", "--retries", "4"
    )


def _verify(source, target):
    for s in source.samples:
        assert_image_copied(source.url, s.repository, s.tag, target.url, s.repository)


def test_reset_mid_blob_and_server_errors(source, new_registry, cli, proxy_for):
    target = new_registry()

    def source_faults(method, path, n):
        if method == "GET" and "/blobs/" in path and n <= 3:
            return Fault(reset_after=5000)
        return None

    def target_faults(method, path, n):
        if method == "PUT" and "/blobs/uploads/" in path and n <= 3:
            return Fault(status=500)
        if method == "PUT" and "/manifests/" in path and n == 1:
            return Fault(status=503)
        return None

    src = proxy_for(source.server, source_faults)
    dst = proxy_for(target, target_faults)
    result = _copy_all(cli, source, src.url, dst.url)
    assert result.returncode == 0, result.output
    _verify(source, target)
    assert src.count("GET", "/blobs/") > 3  # the reset blobs were fetched again


def test_rate_limit_with_retry_after_and_slow_stream(source, new_registry, cli, proxy_for):
    target = new_registry()

    def source_faults(method, path, n):
        if method == "GET" and "/manifests/" in path and n <= 2:
            return Fault(status=429, headers=(("Retry-After", "1"),))
        if method == "GET" and "/blobs/" in path:
            return Fault(rate=2_000_000)
        return None

    src = proxy_for(source.server, source_faults)
    result = _copy_all(cli, source, src.url, target.url)
    assert result.returncode == 0, result.output
    _verify(source, target)


def test_persistent_failure_names_image_and_cause(source, new_registry, cli, proxy_for):
    target = new_registry()
    dst = proxy_for(
        target, lambda m, p, n: Fault(status=500) if m == "PUT" and "/manifests/" in p else None
    )
    result = cli("copy", "tools/t0:latest", "--from", source.url, "--to", dst.url, "--retries", "1")
    assert result.returncode == 1
    assert "pushing manifest tools/t0:latest" in result.output and "HTTP 500" in result.output
    assert "tools/t0:latest" in result.stdout.split("rerun with these lines")[1]


def test_http_proxy_and_no_proxy_from_environment(source, new_registry, cli):
    target = new_registry()
    proxy = FaultProxy(target.port)  # a forward proxy that can reach only the target
    try:
        env = {
            "http_proxy": proxy.url,
            "HTTP_PROXY": proxy.url,
            "no_proxy": source.server.host,
            "NO_PROXY": source.server.host,
        }
        result = cli("copy", "demo/app0:1.0", "--from", source.url, "--to", target.url, env=env)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert_image_copied(source.url, "demo/app0", "1.0", target.url, "demo/app0")
    assert any(path.startswith(f"{target.url}/v2/") for _, path in proxy.log)
    assert not any(source.server.host in path for _, path in proxy.log)
