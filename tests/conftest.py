"""Fixtures: real distribution registries on 127.0.0.1, sample images, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import Sample, push_sample_set
from imageferry.testing.registry_server import RegistryServer, start_registry

ROOT = Path(__file__).resolve().parent.parent
# the CLI speaks the system's language: tests read its English (a test may ask for --lang)
os.environ["LC_ALL"] = "C.UTF-8"
# tests talk only to 127.0.0.1: a proxy from the machine's environment must not interfere
for _name in [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
    del os.environ[_name]


@pytest.fixture
def new_registry(tmp_path_factory):
    """Factory: start a registry (plain http unless told otherwise); stopped after the test."""
    started: list[RegistryServer] = []

    def make(**kwargs) -> RegistryServer:
        server = start_registry(tmp_path_factory.mktemp("registry"), **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@dataclass
class SourceWithSamples:
    server: RegistryServer
    samples: list[Sample]

    @property
    def url(self) -> str:
        return self.server.url

    def list_text(self) -> str:
        return "\n".join(s.line for s in self.samples) + "\n"


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    """One read-only source registry holding the dozen sample images."""
    server = start_registry(tmp_path_factory.mktemp("source"))
    client = Registry(RegistryConfig(registry=server.url), writable=True)
    samples = push_sample_set(client)
    client.close()
    yield SourceWithSamples(server, samples)
    server.stop()


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):
        return json.loads(self.stdout)


@pytest.fixture
def cli(tmp_path):
    """Run the real CLI (``python -m imageferry``) in tmp_path; no cfg.yaml unless written."""

    def run(
        *args: str, input: str | None = None, env: dict | None = None, timeout: float = 240
    ) -> CliResult:
        full_env = {**os.environ, "HOME": str(tmp_path / "home"), **(env or {})}
        full_env.pop("DOCKER_CONFIG", None)
        done = subprocess.run(
            [sys.executable, "-m", "imageferry", *args],
            cwd=tmp_path,
            input=input or "",
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def display():
    """One private Xvfb for every window test of the run (DISPLAY set while it lives).

    One for the whole session: Tk keeps its X connection until the process ends, and a
    display that went away under it ends the process at the next window."""
    from support.xvfb import xvfb

    old = os.environ.get("DISPLAY")
    with xvfb() as name:
        os.environ["DISPLAY"] = name
        yield name
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
