"""imageferry copy vs skopeo sync on the same local registries (see README.md)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from imageferry.testing.registry_server import RegistryServer, start_registry

MIB = 1024 * 1024


def seed(url: str, scenario: str, big_mb: int) -> list[str]:
    """Push the scenario's images in a child process; return the image list lines."""
    code = f"""
import json, sys
from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
r = Registry(RegistryConfig(registry={url!r}), writable=True, maxconn=4)
scenario, big_mb, lines = {scenario!r}, {big_mb}, []
if scenario == "shared":
    bases = [make_layer(f"base{{i}}", s * 1024 * 1024, level=0) for i, s in enumerate((24, 12, 6))]
    for i in range(40):
        own = make_layer(f"own{{i}}", 1024 * 1024, level=0)
        m, blobs = make_image([*bases, own], label=str(i))
        repo = f"shared/app{{i % 8}}"
        push_image(r, repo, f"v{{i}}", m, blobs)
        lines.append(f"{{repo}}:v{{i}}")
elif scenario == "tiny":
    for i in range(150):
        m, blobs = make_image([make_layer(f"tiny{{i}}", 1024)], label=str(i))
        push_image(r, f"tiny/img{{i % 30}}", f"t{{i}}", m, blobs)
        lines.append(f"tiny/img{{i % 30}}:t{{i}}")
else:
    m, blobs = make_image([make_layer("big", big_mb * 1024 * 1024, level=0)])
    push_image(r, "big/layer", "1", m, blobs)
    lines.append("big/layer:1")
print(json.dumps(lines))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def timed(cmd: list[str], cwd: Path) -> tuple[float, int, int]:
    """(seconds, peak RSS bytes, exit code) of one command."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(proc.stderr.read().decode()[-2000:] if proc.stderr else "", file=sys.stderr)
    return seconds, usage.ru_maxrss * 1024, proc.returncode


def run_imageferry(src: RegistryServer, dst: RegistryServer, lines: list[str], work: Path, j: int):
    (work / "list.txt").write_text("\n".join(lines) + "\n")
    exe = shutil.which("imageferry") or str(Path(sys.executable).parent / "imageferry")
    return timed(
        [
            exe,
            "copy",
            "-l",
            "list.txt",
            "--from",
            src.url,
            "--to",
            dst.url,
            "-j",
            str(j),
            "--log",
            str(work / "bench.log"),
        ],
        work,
    )


def sync_spec(src: RegistryServer, lines: list[str], work: Path) -> None:
    """``work/sync.yaml``: the image list as ``skopeo sync --src yaml`` reads it."""
    images: dict[str, list[str]] = {}
    for line in lines:
        repo, tag = line.rsplit(":", 1)
        images.setdefault(repo, []).append(tag)
    spec = {src.host: {"tls-verify": False, "images": images}}
    (work / "sync.yaml").write_text(json.dumps(spec))


def skopeo_from_dir(folder: Path, host: str) -> list[str]:
    """``skopeo sync`` of a ``--dest dir`` copy into the registry at ``host``."""
    return [
        "skopeo",
        "sync",
        "--src",
        "dir",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--preserve-digests",
        "--all",
        str(folder),
        f"{host}/skopeo",
    ]


def run_skopeo(src: RegistryServer, dst: RegistryServer, lines: list[str], work: Path):
    sync_spec(src, lines, work)
    return timed(
        [
            "skopeo",
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            "--all",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "sync.yaml",
            dst.host,
        ],
        work,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=["all", "shared", "tiny", "big"], default="all")
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("-j", type=int, default=8, help="imageferry -j")
    args = parser.parse_args()
    if shutil.which("skopeo") is None:
        print("skopeo is missing: apt-get install skopeo (scripts/setup.sh)", file=sys.stderr)
        return 2
    scenarios = ["shared", "tiny", "big"] if args.scenario == "all" else [args.scenario]
    root = Path(tempfile.mkdtemp(prefix="imageferry-bench-"))
    rows = []
    try:
        for scenario in scenarios:
            src = start_registry(root / f"{scenario}-src")
            try:
                lines = seed(src.url, scenario, args.big_mb)
                results = {}
                for tool in ("imageferry", "skopeo"):
                    dst = start_registry(root / f"{scenario}-{tool}")
                    work = root / f"{scenario}-{tool}-work"
                    work.mkdir()
                    try:
                        if tool == "imageferry":
                            results[tool] = run_imageferry(src, dst, lines, work, args.j)
                        else:
                            results[tool] = run_skopeo(src, dst, lines, work)
                    finally:
                        dst.stop()
                        shutil.rmtree(root / f"{scenario}-{tool}", ignore_errors=True)
                rows.append((scenario, len(lines), results))
            finally:
                src.stop()
                shutil.rmtree(root / f"{scenario}-src", ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'scenario':<8} {'images':>6} {'imageferry s':>13} {'skopeo s':>9} {'ratio':>6} "
        f"{'imageferry MB':>14} {'skopeo MB':>10}"
    )
    for scenario, n, r in rows:
        (ti, mi, ci), (ts, ms, cs) = r["imageferry"], r["skopeo"]
        flag = "" if ci == cs == 0 else f"  (exit codes {ci}/{cs})"
        print(
            f"{scenario:<8} {n:>6} {ti:>13.2f} {ts:>9.2f} {ts / ti:>6.2f} "
            f"{mi / MIB:>14.0f} {ms / MIB:>10.0f}{flag}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
