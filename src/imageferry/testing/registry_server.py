"""Run the real CNCF distribution registry (Debian's ``docker-registry``) on loopback."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

BINARY_NAMES = ("docker-registry", "registry")


def find_binary() -> str:
    for name in BINARY_NAMES:
        path = shutil.which(name)
        if path:
            return path
    for candidate in ("/usr/bin/docker-registry", "/usr/sbin/docker-registry"):
        if Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "the distribution registry is not installed: run 'apt-get install docker-registry' "
        "(scripts/setup.sh does it)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryServer:
    """One registry process. ``url`` is what cfg.yaml's ``registry:`` would say."""

    root: Path
    port: int
    scheme: str = "http"
    auth: dict | None = None  # the distribution config's "auth" section
    tls: tuple[Path, Path] | None = None  # certificate, key
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def start(self) -> RegistryServer:
        http: dict = {"addr": self.host, "secret": secrets.token_hex(16)}
        if self.tls:
            http["tls"] = {"certificate": str(self.tls[0]), "key": str(self.tls[1])}
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": http,
        }
        if self.auth:
            config["auth"] = self.auth
        self.root.mkdir(parents=True, exist_ok=True)
        cfg_path = self.root / "config.yml"
        cfg_path.write_text(yaml.safe_dump(config))
        log = open(self.root / "registry.log", "ab")
        self.process = subprocess.Popen(
            [find_binary(), "serve", str(cfg_path)], stdout=log, stderr=subprocess.STDOUT
        )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"registry exited: {(self.root / 'registry.log').read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"registry on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_registry(root: Path | None = None, **kwargs: object) -> RegistryServer:
    root = root or Path(tempfile.mkdtemp(prefix="imageferry-registry-"))
    return RegistryServer(root=root, port=free_port(), **kwargs).start()  # type: ignore[arg-type]


def htpasswd_auth(folder: Path, user: str, password: str) -> dict:
    """An ``auth`` section for Basic auth (needs Debian's apache2-utils for bcrypt)."""
    tool = shutil.which("htpasswd")
    if tool is None:
        raise RuntimeError("htpasswd is missing: apt-get install apache2-utils")
    path = folder / "htpasswd"
    folder.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([tool, "-Bbn", user, password], check=True, capture_output=True).stdout
    path.write_bytes(out)
    return {"htpasswd": {"realm": "imageferry-test", "path": str(path)}}
