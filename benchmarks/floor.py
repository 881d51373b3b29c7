"""The floor: the least work any correct copier must do, as a yardstick for imageferry.

Each unique blob once (GET streamed into a monolithic PUT, sha256 checked on
the way), a cross-repository mount where another repository of the target
already got it, then the manifests (children first). No planning beyond
reading the manifests, no HEAD checks, no retries, no progress. ``save``
writes each blob once into one of N plain files. It is not a product: it
exists to say how far imageferry is from the least a copier can do.

It runs as its own process, like every tool it is compared with (start-up is
work every copier does):

    python floor.py copy SRC_URL DST_URL LIST
    python floor.py save SRC_URL FOLDER LIST [SKIP]   # SKIP: digests of a base, one a line
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
CHUNK = 1024 * 1024


class Floor:
    def __init__(self, src: str, workers: int = 5) -> None:
        self.src = src.rstrip("/")
        self.workers = workers
        self.http = urllib3.PoolManager(maxsize=workers * 2, retries=False)

    def _manifests(self, repo: str, ref: str) -> list[tuple[str, bytes, str]]:
        """(digest, bytes, media type) of the image and its children, children first."""
        r = self.http.request(
            "GET", f"{self.src}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}
        )
        raw, mt = r.data, r.headers["Content-Type"]
        doc = json.loads(raw)
        out = []
        for child in doc.get("manifests", []):
            out += self._manifests(repo, child["digest"])
        return [*out, ("sha256:" + hashlib.sha256(raw).hexdigest(), raw, mt)]

    def _read(self, lines: list[str]):
        images = []
        for line in lines:
            repo, tag = line.rsplit(":", 1)
            images.append((repo, tag, self._manifests(repo, tag)))
        blobs: dict[str, tuple[str, int]] = {}  # digest -> (first repo, size)
        per_repo: dict[str, set[str]] = {}
        for repo, _, manifests in images:
            for _, raw, _ in manifests:
                doc = json.loads(raw)
                for b in [doc.get("config"), *doc.get("layers", [])]:
                    if b:
                        blobs.setdefault(b["digest"], (repo, b["size"]))
                        per_repo.setdefault(repo, set()).add(b["digest"])
        return images, blobs, per_repo

    def _stream(self, repo: str, digest: str):
        r = self.http.request("GET", f"{self.src}/v2/{repo}/blobs/{digest}", preload_content=False)
        h = hashlib.sha256()
        for chunk in r.stream(CHUNK):
            h.update(chunk)
            yield chunk
        r.release_conn()
        if "sha256:" + h.hexdigest() != digest:
            raise RuntimeError(f"digest mismatch {digest}")

    def copy(self, dst: str, lines: list[str]) -> None:
        dst = dst.rstrip("/")
        images, blobs, per_repo = self._read(lines)

        def upload(digest: str) -> None:
            repo, _ = blobs[digest]
            r = self.http.request("POST", f"{dst}/v2/{repo}/blobs/uploads/")
            loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else dst + loc
            sep = "&" if "?" in loc else "?"
            body = (
                b"".join(self._stream(repo, digest))
                if blobs[digest][1] < CHUNK
                else self._stream(repo, digest)
            )
            r = self.http.request(
                "PUT",
                f"{loc}{sep}digest={digest}",
                body=body,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert r.status == 201, (r.status, r.data[:200])

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(upload, blobs))

        def mount(job: tuple[str, str]) -> None:
            repo, digest = job
            first = blobs[digest][0]
            r = self.http.request(
                "POST", f"{dst}/v2/{repo}/blobs/uploads/?mount={digest}&from={first}"
            )
            assert r.status == 201, r.status

        mounts = [(repo, d) for repo, ds in per_repo.items() for d in ds if blobs[d][0] != repo]
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(mount, mounts))

        def manifests(image) -> None:
            repo, tag, ms = image
            for i, (digest, raw, mt) in enumerate(ms):
                ref = tag if i == len(ms) - 1 else digest
                r = self.http.request(
                    "PUT",
                    f"{dst}/v2/{repo}/manifests/{ref}",
                    body=raw,
                    headers={"Content-Type": mt},
                )
                assert r.status == 201, r.status

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(manifests, images))

    def blob_digests(self, lines: list[str]) -> set[str]:
        return set(self._read(lines)[1])

    def save(self, folder: Path, lines: list[str], skip: frozenset[str] = frozenset()) -> None:
        """Each blob of ``lines`` not in ``skip`` (an incremental's base) into N plain files."""
        folder.mkdir(parents=True, exist_ok=True)
        images, blobs, _ = self._read(lines)
        blobs = {d: v for d, v in blobs.items() if d not in skip}
        files = [open(folder / f"floor_{k}.bin", "wb") for k in range(self.workers)]
        locks = [threading.Lock() for _ in files]
        order = list(blobs)

        def fetch(k: int) -> None:
            for digest in order[k :: self.workers]:
                repo, _ = blobs[digest]
                with locks[k]:
                    for chunk in self._stream(repo, digest):
                        files[k].write(chunk)

        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(fetch, range(self.workers)))
        for f in files:
            f.close()
        (folder / "floor_meta.json").write_text(
            json.dumps([[r, t, [m[0] for m in ms]] for r, t, ms in images])
        )


def main(argv: list[str]) -> int:
    verb, src, out, listing, *rest = argv
    lines = Path(listing).read_text().split()
    if verb == "copy":
        Floor(src).copy(out, lines)
    else:
        skip = frozenset(Path(rest[0]).read_text().split()) if rest else frozenset()
        Floor(src).save(Path(out), lines, skip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
