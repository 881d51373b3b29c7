"""The built-in demo: local registries, sample images, the real ``imageferry`` commands.

Run with ``scripts/demo.sh`` (or ``python -m imageferry.testing.demo``). It
works in ``demo-work/`` and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import push_sample_set
from imageferry.testing.registry_server import start_registry

PREFLIGHT = "check (校验) before copying"


def program(explicit: str | None = None) -> list[str]:
    """The command that starts imageferry: ``--program``, else this very program when frozen
    (then ``sys.executable`` is imageferry itself, not a Python), else ``python -m imageferry``.
    """
    if explicit:
        return [str(Path(explicit).resolve())]
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "imageferry"]


def _run(title: str, args: list[str], cwd: Path, prog: list[str]) -> int:
    print(f"\n=== {title}\n$ imageferry {' '.join(args)}", flush=True)
    return subprocess.run([*prog, *args], cwd=cwd).returncode


def _steps(work: Path, steps: list[tuple[str, list[str]]], prog: list[str]) -> int:
    for title, cmd in steps:
        rc = _run(title, cmd, work, prog)
        if rc == 1 and title.startswith(PREFLIGHT):
            print("(exit 1: the target does not have these images yet, as expected)")
            continue
        if rc != 0:
            print(f"\ndemo FAILED at: {title} (exit {rc})")
            return rc
    return 0


def _verify(work: Path, target: str, expected: int, prog: list[str]) -> int:
    print(f"\n=== verify: every image on {target} has the source's manifest digest", flush=True)
    done = subprocess.run(
        [*prog, "check", "-l", "images.txt", "--to", target, "--json"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    rows = json.loads(done.stdout or "{}").get("images", [])
    same = [r for r in rows if r["targets"] and r["targets"][0]["state"] == "same"]
    print(f"{len(same)} of {expected} images identical on {target}")
    if done.returncode != 0 or len(same) != expected:
        print(f"demo FAILED: {target} does not hold every image")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="imageferry demo on local registries")
    parser.add_argument("--workdir", default="demo-work", help="folder for registries and files")
    parser.add_argument(
        "--program",
        metavar="PATH",
        help="run this imageferry program (e.g. dist/imageferry) instead of python -m imageferry",
    )
    args = parser.parse_args(argv)
    prog = program(args.program)
    work = Path(args.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    servers = {
        name: start_registry(work / f"registry-{name}") for name in ("company", "site", "airgap")
    }
    try:
        for name, server in servers.items():
            print(f"registry {name}: {server.url}")
        client = Registry(RegistryConfig(registry=servers["company"].url), writable=True)
        samples = push_sample_set(client, layer_size=2 * 1024 * 1024)
        client.close()
        print(f"pushed {len(samples)} sample images (Docker, OCI, multi-platform, an artifact)")
        (work / "cfg.yaml").write_text(
            "source:\n"
            f'- name: company\n  registry: "{servers["company"].url}"\n'
            "target:\n"
            f'- name: site\n  registry: "{servers["site"].url}"\n'
            f'- name: airgap\n  registry: "{servers["airgap"].url}"\n'
            "maxconn: 5\nretries: 2\n"
        )
        (work / "images.txt").write_text(
            "# images to deliver (the host part is replaced by the chosen source)\n"
            + "\n".join(s.line for s in samples)
            + "\n"
        )
        print(f"wrote {work / 'cfg.yaml'} and {work / 'images.txt'}")
        direct = [
            (
                PREFLIGHT + ": what will be copied where",
                ["check", "-l", "images.txt", "--to", "site"],
            ),
            (
                "copy (直传): stream every image to the site",
                ["copy", "-l", "images.txt", "--to", "site"],
            ),
            ("copy again: nothing left to move", ["copy", "-l", "images.txt", "--to", "site"]),
        ]
        if _steps(work, direct, prog) or _verify(work, "site", len(samples), prog):
            return 1
        save = [
            (
                "save (下载): write an offline package",
                ["save", "-l", "images.txt", "--from", "company", "-o", "packages"],
            )
        ]
        if _steps(work, save, prog):
            return 1
        meta = str(next((work / "packages").glob("*/*_meta.yaml")).relative_to(work))
        offline = [
            ("check (校验) the package, as on the customer's jump host", ["check", meta]),
            (
                "load (上传): push the package into the air-gapped registry",
                ["load", meta, "--to", "airgap"],
            ),
        ]
        if _steps(work, offline, prog) or _verify(work, "airgap", len(samples), prog):
            return 1
        print("\ndemo OK: copy, save and load delivered every image byte for byte.")
        return 0
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
