"""Issue 10's table: imageferry against the floor, skopeo and image-transmit, one run.

Every tool runs as its own process on the same registries, the tools of a row
interleaved run by run (imageferry, floor, skopeo, image-transmit, then again),
each copy or load into a fresh target registry. A figure is the median of
``--runs`` (default 3). Talks only to 127.0.0.1.

    .venv/bin/python benchmarks/bench_speed.py [--runs 3] [--image-transmit PATH]

image-transmit (github.com/wct-devops/image-transmit) is measured when
``--image-transmit`` names a binary of it; none is shipped or built here.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_copy import run_skopeo, skopeo_from_dir, sync_spec
from floor import Floor

import imageferry
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
FLOOR = str(Path(__file__).with_name("floor.py"))


def skopeo(src: RegistryServer, dst: RegistryServer, lines: list[str], work: Path):
    """``skopeo sync`` of ``lines`` (bench_copy's invocation): seconds and peak RSS."""
    os.sync()  # as run() does
    seconds, rss, code = run_skopeo(src, dst, lines, work)
    assert code == 0, "skopeo sync failed"
    return seconds, rss


def seed(url: str, kind: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SEED, url, kind], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def exe() -> str:
    return shutil.which("imageferry") or str(Path(sys.executable).parent / "imageferry")


def run(cmd: list[str], cwd: Path, what: str) -> tuple[float, int]:
    """Seconds and peak RSS of one command, which must succeed; its output in cwd/out.txt.

    The disk's write-back of earlier runs is finished first (``sync``, not timed): a
    tool that syncs its files must not pay for the pages another tool left dirty."""
    os.sync()
    with open(cwd / "out.txt", "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"{what} failed ({code}): {(cwd / 'out.txt').read_text()[-2000:]}"
    return seconds, usage.ru_maxrss * 1024


@dataclass
class Row:
    name: str
    goal: tuple[str, float]  # (yardstick, highest ratio allowed)
    tools: dict[str, Callable[[int], tuple[float, int]]]
    seconds: dict[str, list[float]] = field(default_factory=dict)
    rss: int = 0

    def measure(self, runs: int) -> Row:
        for k in range(runs):
            for tool, fn in self.tools.items():
                seconds, rss = fn(k)
                self.seconds.setdefault(tool, []).append(seconds)
                if tool == "imageferry":
                    self.rss = max(self.rss, rss)
        return self

    def median(self, tool: str) -> float:
        return statistics.median(self.seconds[tool])


class Bench:
    def __init__(self, root: Path, transmit: str | None) -> None:
        self.root, self.transmit = root, transmit
        self.servers: list[RegistryServer] = []
        self.count = 0

    def registry(self, name: str) -> RegistryServer:
        self.count += 1
        s = start_registry(self.root / f"{name}-{self.count}")
        self.servers.append(s)
        return s

    def folder(self, name: str) -> Path:
        self.count += 1
        path = self.root / f"{name}-{self.count}"
        path.mkdir()
        return path

    def ferry(self, work: Path, *args: str) -> tuple[float, int]:
        return run([exe(), *args, "--log", str(work / "bench.log")], work, f"imageferry {args[0]}")

    def floor(self, work: Path, *args: str) -> tuple[float, int]:
        return run([sys.executable, FLOOR, *args], work, "floor")

    def it_folder(self, src: RegistryServer, dst: RegistryServer | None, lines: list[str]) -> Path:
        """A working folder for one image-transmit run: its cfg.yaml and list."""
        work = self.folder("it")
        target = f"target:\n- name: dst\n  registry: {dst.url}\n" if dst else ""
        (work / "cfg.yaml").write_text(
            f"source:\n- name: src\n  registry: {src.url}\n{target}"
            "maxconn: 5\nretries: 2\ncompressor: tar\n"
        )
        (work / "list.txt").write_text("\n".join(lines) + "\n")
        return work

    def it(self, work: Path, *args: str) -> tuple[float, int]:
        assert self.transmit
        seconds, rss = run([self.transmit, *args], work, "image-transmit")
        said = (work / "out.txt").read_text()
        assert "with 0 failed" in said, f"image-transmit failed: {said[-2000:]}"
        return seconds, rss


SYNCED = "image-transmit + sync"


def on_disk(save: Callable[[int], tuple[float, int]]) -> Callable[[int], tuple[float, int]]:
    """``save``, timed until its files are on the disk (image-transmit never syncs them;
    imageferry syncs its data files before it writes the meta file): for comparison."""

    def timed_to_disk(k: int) -> tuple[float, int]:
        seconds, rss = save(k)
        start = time.monotonic()
        os.sync()
        return seconds + time.monotonic() - start, rss

    return timed_to_disk


def it_meta(work: Path) -> Path:
    return next((work / "data").glob("*/*_meta.yaml"))


def copy_rows(b: Bench, kind: str, src: RegistryServer, data: dict, runs: int) -> list[Row]:
    lines = data["lines"]
    work = b.folder(f"{kind}-work")
    (work / "list.txt").write_text("\n".join(lines) + "\n")

    def fresh(fn: Callable[[RegistryServer], tuple[float, int]]) -> Callable:
        return lambda k: fn(b.registry(kind))

    tools = {
        "imageferry": fresh(
            lambda d: b.ferry(work, "copy", "-l", "list.txt", "--from", src.url, "--to", d.url)
        ),
        "floor": fresh(lambda d: b.floor(work, "copy", src.url, d.url, "list.txt")),
        "skopeo": fresh(lambda d: skopeo(src, d, lines, work)),
    }
    if b.transmit:
        tools["image-transmit"] = fresh(
            lambda d: b.it(b.it_folder(src, d, lines), "-src=src", "-dst=dst", "-lst=list.txt")
        )
    name = f"copy {len(lines)} images" + (", shared bases" if kind == "shared" else " (7 MB)")
    rows = [Row(name, ("floor", 1.2 if kind == "shared" else 1.1), tools).measure(runs)]
    if kind != "shared":
        return rows
    full = {t: b.registry("noop") for t in tools}
    b.ferry(work, "copy", "-l", "list.txt", "--from", src.url, "--to", full["imageferry"].url)
    skopeo(src, full["skopeo"], lines, work)
    noop = {
        "imageferry": lambda k: b.ferry(
            work, "copy", "-l", "list.txt", "--from", src.url, "--to", full["imageferry"].url
        ),
        "skopeo": lambda k: skopeo(src, full["skopeo"], lines, work),
    }
    if b.transmit:
        it_work = b.it_folder(src, full["image-transmit"], lines)
        b.it(it_work, "-src=src", "-dst=dst", "-lst=list.txt")
        noop["image-transmit"] = lambda k: b.it(it_work, "-src=src", "-dst=dst", "-lst=list.txt")
    rows.append(Row("same copy again (nothing to do)", ("skopeo", 1.0), noop).measure(runs))
    return rows


def package_rows(b: Bench, src: RegistryServer, data: dict, runs: int) -> list[Row]:
    lines = data["lines"]
    work = b.folder("pkg-work")
    (work / "list.txt").write_text("\n".join(lines) + "\n")
    it_full: list[Path] = []

    def it_save(k: int) -> tuple[float, int]:
        it_full.append(b.it_folder(src, None, lines))
        return b.it(it_full[-1], "-src=src", "-lst=list.txt")

    save = {
        "imageferry": lambda k: b.ferry(
            work, "save", "-l", "list.txt", "--from", src.url, "-o", f"pkg{k}"
        ),
        "floor": lambda k: b.floor(work, "save", src.url, f"fl{k}", "list.txt"),
    }
    if b.transmit:
        save["image-transmit"] = it_save
        save[SYNCED] = on_disk(it_save)
    goal = ("image-transmit", 1.0) if b.transmit else ("floor", 1.0)
    rows = [Row("save 15 images", goal, save).measure(runs)]
    meta = next((work / "pkg0").glob("*/*_meta.yaml"))
    sync_spec(src, lines, work)
    sync = ["skopeo", "sync", "--src", "yaml", "--dest", "dir", "--all", "--preserve-digests"]
    subprocess.run(
        [*sync, "sync.yaml", str(work / "skdir")], check=True, cwd=work, capture_output=True
    )
    load = {
        "imageferry": lambda k: b.ferry(work, "load", str(meta), "--to", b.registry("load").url),
        "skopeo": lambda k: run(
            skopeo_from_dir(work / "skdir", b.registry("load").host),
            work,
            "skopeo sync from a dir",
        ),
    }
    if b.transmit:
        load["image-transmit"] = lambda k: b.it(
            b.it_folder(src, b.registry("load"), lines), "-dst=dst", f"-img={it_meta(it_full[0])}"
        )
    rows.append(Row("load that package", ("skopeo", 0.6), load).measure(runs))
    (work / "base.txt").write_text("\n".join(Floor(src.url).blob_digests(lines)))
    seed(src.url, "changed")  # the next release moves 4 tags to new layers
    inc = {
        "imageferry": lambda k: b.ferry(
            work, "save", "-l", "list.txt", "--from", src.url, "-o", f"inc{k}", "--base", str(meta)
        ),
        "floor": lambda k: b.floor(work, "save", src.url, f"fi{k}", "list.txt", "base.txt"),
    }
    if b.transmit:
        inc["image-transmit"] = lambda k: b.it(
            b.it_folder(src, None, lines),
            "-src=src",
            "-lst=list.txt",
            f"-inc={it_meta(it_full[0])}",
        )
        inc[SYNCED] = on_disk(inc["image-transmit"])
    goal = ("image-transmit", 2.0) if b.transmit else ("floor", 2.0)
    rows.append(Row("incremental save (4 images changed)", goal, inc).measure(runs))
    return rows


def table(rows: list[Row]) -> str:
    tools = ["imageferry", "floor", "skopeo", "image-transmit", SYNCED]
    tools = [t for t in tools if any(t in r.seconds for r in rows)]
    out = ["| what | " + " | ".join(tools) + " | target | met | imageferry peak RSS |"]
    out.append("|---" * (len(tools) + 4) + "|")
    for r in rows:
        mine = r.median("imageferry")
        cells = [f"{mine:.2f} s"]
        for t in tools[1:]:
            cells.append(
                f"{r.median(t):.2f} s ({mine / r.median(t):.2f}×)" if t in r.seconds else ""
            )
        yard, limit = r.goal
        met = "yes" if mine / r.median(yard) <= limit else "no"
        cells += [f"≤ {limit}× {yard}", met, f"{r.rss / 2**20:.0f} MB"]
        out.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image-transmit", help="an image-transmit binary, to measure it too")
    args = parser.parse_args()
    # An installed imageferry (a wheel, the one-file program) carries compiled modules; an
    # editable checkout under PYTHONDONTWRITEBYTECODE would compile every module on every run.
    compileall.compile_dir(Path(imageferry.__file__).parent, quiet=1)
    root = Path(tempfile.mkdtemp(prefix="imageferry-speed-"))
    b = Bench(root, args.image_transmit)
    rows: list[Row] = []
    try:
        for kind in ("shared", "small"):
            src = b.registry(f"{kind}-src")
            data = seed(src.url, kind)
            rows += copy_rows(b, kind, src, data, args.runs)
            if kind == "shared":
                rows += package_rows(b, src, data, args.runs)
    finally:
        for s in b.servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
