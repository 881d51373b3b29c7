"""Issue 10's table: imageferry against the floor (benchmarks/floor.py) and skopeo, one run.

Every row is the median of ``--runs`` (default 3) repetitions, each tool on
fresh target registries in the same run. Talks only to 127.0.0.1.

    .venv/bin/python benchmarks/bench_speed.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_copy import run_skopeo, timed
from floor import Floor

from imageferry.testing.registry_server import RegistryServer, start_registry

SEED = """
import json, sys
from imageferry.core.config import RegistryConfig
from imageferry.registry import Registry
from imageferry.testing.images import make_image, make_layer, push_image
r = Registry(RegistryConfig(registry=sys.argv[1]), writable=True, maxconn=4)
kind, out = sys.argv[2], {}
MB = 1024 * 1024
if kind == "shared":  # 15 images, ~320 MB unique: 3 shared bases + one layer of their own
    bases = [make_layer(f"b{i}", s * MB, level=0) for i, s in enumerate((64, 32, 16))]
    out["lines"], out["changed"] = [], []
    for i in range(15):
        m, blobs = make_image([*bases, make_layer(f"own{i}", 14 * MB, level=0)], label=str(i))
        push_image(r, f"shared/app{i % 5}", f"v{i}", m, blobs)
        out["lines"].append(f"shared/app{i % 5}:v{i}")
elif kind == "changed":  # the next release: 4 images changed
    bases = [make_layer(f"b{i}", s * MB, level=0) for i, s in enumerate((64, 32, 16))]
    for i in range(4):
        m, blobs = make_image([*bases, make_layer(f"new{i}", 14 * MB, level=0)], label=f"n{i}")
        push_image(r, f"shared/app{i % 5}", f"v{i}", m, blobs)
else:  # 60 small images, about 7 MB in all
    out["lines"] = []
    for i in range(60):
        m, blobs = make_image([make_layer(f"s{i}", 117 * 1024, level=0)], label=str(i))
        push_image(r, f"small/img{i % 20}", f"t{i}", m, blobs)
        out["lines"].append(f"small/img{i % 20}:t{i}")
print(json.dumps(out))
"""


def seed(url: str, kind: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SEED, url, kind], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def exe() -> str:
    return shutil.which("imageferry") or str(Path(sys.executable).parent / "imageferry")


_RSS: list[int] = []  # peak RSS of every imageferry run since the last ours()


def ferry(*args: str, cwd: Path) -> float:
    seconds, rss, code = timed([exe(), *args, "--log", str(cwd / "bench.log")], cwd)
    assert code == 0, f"imageferry {args[0]} failed ({code})"
    _RSS.append(rss)
    return seconds


def ours(runs: int, measure: Callable[[int], float]) -> tuple[float, int]:
    """Median seconds of imageferry's runs, and the highest peak RSS among them."""
    _RSS.clear()
    return median(runs, measure), max(_RSS)


def skopeo_sync(src: RegistryServer, lines: list[str], dst: RegistryServer, cwd: Path) -> float:
    """``skopeo sync`` of ``lines`` (bench_copy's invocation), in seconds; it must succeed."""
    seconds, _, code = run_skopeo(src, dst, lines, cwd)
    assert code == 0, "skopeo sync failed"
    return seconds


def in_process(fn: Callable[[], None]) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


def median(runs: int, measure: Callable[[int], float]) -> float:
    return statistics.median(measure(k) for k in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="imageferry-speed-"))
    servers: list[RegistryServer] = []

    def registry(name: str) -> RegistryServer:
        s = start_registry(root / name)
        servers.append(s)
        return s

    rows = []
    try:
        for kind in ("shared", "small"):
            src = registry(f"{kind}-src")
            data = seed(src.url, kind)
            lines = data["lines"]
            work = root / f"{kind}-work"
            work.mkdir()
            (work / "list.txt").write_text("\n".join(lines) + "\n")

            def copy_ferry(k: int) -> float:
                dst = registry(f"{kind}-if-{k}")
                return ferry("copy", "-l", "list.txt", "--from", src.url, "--to", dst.url, cwd=work)

            def copy_floor(k: int) -> float:
                dst = registry(f"{kind}-fl-{k}")
                return in_process(lambda: Floor(src.url).copy(dst.url, lines))

            name = "copy 15 images, shared bases" if kind == "shared" else "copy 60 small images"
            rows.append(
                (name, *ours(args.runs, copy_ferry), "floor", median(args.runs, copy_floor))
            )
            if kind != "shared":
                continue
            noop_dst = registry("noop-if")
            ferry("copy", "-l", "list.txt", "--from", src.url, "--to", noop_dst.url, cwd=work)
            sk_dst = registry("noop-sk")
            skopeo_sync(src, lines, sk_dst, work)
            rows.append(
                (
                    "same copy again (nothing to do)",
                    *ours(
                        args.runs,
                        lambda k: ferry(
                            "copy",
                            "-l",
                            "list.txt",
                            "--from",
                            src.url,
                            "--to",
                            noop_dst.url,
                            cwd=work,
                        ),
                    ),
                    "skopeo sync",
                    median(args.runs, lambda k: skopeo_sync(src, lines, sk_dst, work)),
                )
            )
            rows.append(
                (
                    "save 15 images",
                    *ours(
                        args.runs,
                        lambda k: ferry(
                            "save", "-l", "list.txt", "--from", src.url, "-o", f"pkg{k}", cwd=work
                        ),
                    ),
                    "floor save",
                    median(
                        args.runs,
                        lambda k: in_process(lambda: Floor(src.url).save(work / f"fl{k}", lines)),
                    ),
                )
            )
            meta = next((work / "pkg0").glob("*/*_meta.yaml"))
            subprocess.run(
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
                    str(work / "skdir"),
                ],
                check=True,
                cwd=work,
                capture_output=True,
            )

            def load_sk(k: int) -> float:
                dst = registry(f"load-sk-{k}")
                cmd = [
                    "skopeo",
                    "sync",
                    "--src",
                    "dir",
                    "--dest",
                    "docker",
                    "--dest-tls-verify=false",
                    "--preserve-digests",
                    "--all",
                    str(work / "skdir"),
                    f"{dst.host}/skopeo",
                ]
                return timed(cmd, work)[0]

            rows.append(
                (
                    "load that package",
                    *ours(
                        args.runs,
                        lambda k: ferry(
                            "load", str(meta), "--to", registry(f"load-if-{k}").url, cwd=work
                        ),
                    ),
                    "skopeo sync from a dir",
                    median(args.runs, load_sk),
                )
            )
            base_blobs = frozenset(Floor(src.url).blob_digests(lines))
            seed(src.url, "changed")  # the next release moves 4 tags to new layers
            rows.append(
                (
                    "incremental save (4 images changed)",
                    *ours(
                        args.runs,
                        lambda k: ferry(
                            "save",
                            "-l",
                            "list.txt",
                            "--from",
                            src.url,
                            "-o",
                            f"inc{k}",
                            "--base",
                            str(meta),
                            cwd=work,
                        ),
                    ),
                    "floor save of what is new",
                    median(
                        args.runs,
                        lambda k: in_process(
                            lambda: Floor(src.url).save(work / f"fi{k}", lines, base_blobs)
                        ),
                    ),
                )
            )
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
    print("| what | imageferry | yardstick | ratio | imageferry peak RSS |")
    print("|---|---|---|---|---|")
    for name, mine, rss, yard_name, yard in rows:
        print(
            f"| {name} | {mine:.2f} s | {yard_name} {yard:.2f} s | {mine / yard:.2f}× "
            f"| {rss / 2**20:.0f} MB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
