"""imageferry save/load vs skopeo sync to and from a directory, same registries, same run.

Also prints the package size against the unique bytes of the list.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench_copy import MIB, seed, skopeo_from_dir, timed

from imageferry.testing.registry_server import start_registry


def unique_bytes(url: str, lines: list[str]) -> int:
    sizes: dict[str, int] = {}
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    for line in lines:
        repo, tag = line.rsplit(":", 1)
        req = urllib.request.Request(f"{url}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
        raw = urllib.request.urlopen(req).read()
        doc = json.loads(raw)
        sizes[f"m{hash(raw)}"] = len(raw)
        for blob in [doc["config"], *doc["layers"]]:
            sizes[blob["digest"]] = blob["size"]
    return sum(sizes.values())


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=["shared", "tiny", "big"], default="shared")
    parser.add_argument("--big-mb", type=int, default=512)
    parser.add_argument("-j", type=int, default=5)
    args = parser.parse_args()
    exe = shutil.which("imageferry") or str(Path(sys.executable).parent / "imageferry")
    root = Path(tempfile.mkdtemp(prefix="imageferry-bench-pkg-"))
    servers = []
    try:
        src = start_registry(root / "src")
        servers.append(src)
        lines = seed(src.url, args.scenario, args.big_mb)
        (root / "list.txt").write_text("\n".join(lines) + "\n")
        images: dict[str, list[str]] = {}
        for line in lines:
            repo, tag = line.rsplit(":", 1)
            images.setdefault(repo, []).append(tag)
        (root / "sync.yaml").write_text(
            json.dumps({src.host: {"tls-verify": False, "images": images}})
        )

        save_if = timed(
            [
                exe,
                "save",
                "-l",
                "list.txt",
                "--from",
                src.url,
                "-o",
                "pkg",
                "-j",
                str(args.j),
                "--log",
                "bench.log",
            ],
            root,
        )
        save_sk = timed(
            [
                "skopeo",
                "sync",
                "--src",
                "yaml",
                "--dest",
                "dir",
                "--all",
                "--preserve-digests",
                "sync.yaml",
                str(root / "skopeo-dir"),
            ],
            root,
        )
        meta = next((root / "pkg").glob("*/*_meta.yaml"))
        dst_if, dst_sk = start_registry(root / "dst-if"), start_registry(root / "dst-sk")
        servers += [dst_if, dst_sk]
        load_if = timed(
            [exe, "load", str(meta), "--to", dst_if.url, "-j", str(args.j), "--log", "bench.log"],
            root,
        )
        load_sk = timed(
            skopeo_from_dir(root / "skopeo-dir", dst_sk.host),
            root,
        )
        unique = unique_bytes(src.url, lines)
        pkg = folder_size(meta.parent)
        sk = folder_size(root / "skopeo-dir")
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"scenario {args.scenario}: {len(lines)} images, unique bytes {unique / MIB:.1f} MiB")
    print(f"{'step':<6} {'imageferry s':>13} {'skopeo s':>9} {'ratio':>6}")
    for step, a, b in (("save", save_if, save_sk), ("load", load_if, load_sk)):
        flag = "" if a[2] == b[2] == 0 else f"  (exit codes {a[2]}/{b[2]})"
        print(f"{step:<6} {a[0]:>13.2f} {b[0]:>9.2f} {b[0] / a[0]:>6.2f}{flag}")
    print(
        f"package {pkg / MIB:.1f} MiB = unique bytes + {100 * (pkg - unique) / unique:.2f}%; "
        f"skopeo dir {sk / MIB:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
