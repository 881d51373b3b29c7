"""Issue 9, Windows: the system proxy (what urllib's getproxies() reads from Internet
Options) is honoured as HTTPS_PROXY is; proxy addresses as people write them."""

from __future__ import annotations

import urllib.request

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from support.faultproxy import FaultProxy
from support.verify import assert_image_copied, get_manifest


def test_system_proxy_from_getproxies_and_its_bypass_list(source, new_registry, monkeypatch):
    """What getproxies()/proxy_bypass() answer on Windows without HTTP(S)_PROXY: the
    registry settings ("http://host:port" for every scheme, a bypass list)."""
    target = new_registry()
    proxy = FaultProxy(target.port)  # a forward proxy that can reach only the target
    asked: list[str] = []

    def bypass(host: str) -> bool:
        asked.append(host)
        return host == source.server.host  # the bypass list names the source

    system = {"http": proxy.url, "https": proxy.url}
    monkeypatch.setattr(urllib.request, "getproxies", lambda: system)
    monkeypatch.setattr(urllib.request, "proxy_bypass", bypass)
    client = Registry(RegistryConfig(registry=target.url), writable=True)
    reader = Registry(RegistryConfig(registry=source.url))
    try:
        manifest = reader.get_manifest("tools/t0", "latest")
        for desc in manifest.blobs:
            if not client.has_blob("tools/t0", desc):
                client.put_blob("tools/t0", desc, reader.open_blob("tools/t0", desc))
        client.put_manifest("tools/t0", "latest", manifest)
    finally:
        client.close()
        reader.close()
        proxy.stop()
        monkeypatch.undo()  # the checks below use urllib, which reads getproxies() too
    assert_image_copied(source.url, "tools/t0", "latest", target.url, "tools/t0")
    assert any(path.startswith(f"{target.url}/v2/") for _, path in proxy.log)
    assert not any(source.server.host in path for _, path in proxy.log)
    assert sorted(set(asked)) == sorted(asked)  # asked once per host (DNS on Windows)


def test_proxy_address_without_scheme_is_an_http_proxy(source, new_registry, cli):
    target = new_registry()
    proxy = FaultProxy(target.port)
    bare = proxy.url.removeprefix("http://")
    env = {"http_proxy": bare, "HTTP_PROXY": bare, "no_proxy": source.server.host}
    env["NO_PROXY"] = env["no_proxy"]
    try:
        result = cli("copy", "tools/t1:latest", "--from", source.url, "--to", target.url, env=env)
    finally:
        proxy.stop()
    assert result.returncode == 0, result.output
    assert get_manifest(target.url, "tools/t1", "latest") is not None
    assert any(path.startswith(f"{target.url}/v2/") for _, path in proxy.log)


def test_a_socks_proxy_is_refused_with_a_message(source, new_registry, cli):
    target = new_registry()
    env = {"http_proxy": "socks4://127.0.0.1:1", "HTTP_PROXY": "socks4://127.0.0.1:1"}
    env |= {"no_proxy": source.server.host, "NO_PROXY": source.server.host}
    result = cli("copy", "tools/t1:latest", "--from", source.url, "--to", target.url, env=env)
    assert result.returncode == 1
    assert "socks4://127.0.0.1:1" in result.output and "http proxy" in result.output
    assert "retrying" not in result.output and "Traceback" not in result.output
