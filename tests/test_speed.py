"""Issue 10: start-up does only what the run needs; a rerun asks the registries the least.

No wall-clock time is asserted: what a run imports, builds and requests is.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from imageferry.core.cancel import CancelToken
from imageferry.core.config import Config, RegistryConfig, load_config
from imageferry.core.errors import ConfigError
from imageferry.core.events import StageProgress, StageStarted
from imageferry.core.model import Field, Model, ValidationError
from imageferry.jobs.inputs import parse_list
from imageferry.jobs.options import transfer_options
from imageferry.jobs.save import run_save, save_options
from imageferry.package.filehash import RunningHash
from imageferry.package.meta import load_meta
from imageferry.registry import Registry, session
from support.faultproxy import FaultProxy
from support.verify import get_manifest

HEAVY = ("pydantic", "yaml", "zstandard", "imageferry.package", "imageferry.cache", "tkinter")


def test_copy_without_cfg_yaml_imports_no_pydantic_yaml_nor_package_code(
    source, new_registry, tmp_path
):
    target = new_registry()
    (tmp_path / "list.txt").write_text(source.list_text())
    code = (
        "import sys\n"
        "from imageferry.cli.main import main\n"
        f"args = ['copy', '-l', 'list.txt', '--from', {source.url!r}, '--to', {target.url!r}]\n"
        "code = main(args)\n"
        f"loaded = sorted(h for h in {HEAVY!r} if any(m == h or m.startswith(h + '.') "
        "for m in sys.modules))\n"
        "print('exit', code, 'loaded', loaded)\n"
    )
    for _ in range(2):  # the copy, then the rerun with nothing to do
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.stdout.strip().splitlines()[-1] == "exit 0 loaded []", done.stdout + done.stderr


def test_save_and_load_import_no_pydantic(source, new_registry, tmp_path):
    """The meta file's records are checked by core/model.py too: no run imports pydantic."""
    target = new_registry()
    line = source.samples[0].line
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from imageferry.cli.main import main\n"
        f"assert main(['save', {line!r}, '--from', {source.url!r}, '-o', 'pkg']) == 0\n"
        "meta = str(next(Path('pkg').glob('*/*_meta.yaml')))\n"
        f"assert main(['load', meta, '--to', {target.url!r}]) == 0\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr


def test_rerun_asks_one_manifest_and_one_head_per_image(source, new_registry, cli, tmp_path):
    """Nothing to do: the tagged manifest from the source, a HEAD at the target; no child
    manifests of the multi-platform indexes, no blob requests (referrers left aside: looking
    for new signatures of delivered images costs a lookup per repository)."""
    target = new_registry()
    (tmp_path / "list.txt").write_text(source.list_text())
    first = cli("copy", "-l", "list.txt", "--from", source.url, "--to", target.url)
    assert first.returncode == 0, first.output
    src, dst = FaultProxy(source.server.port), FaultProxy(target.port)
    try:
        again = cli(
            "copy", "-l", "list.txt", "--from", src.url, "--to", dst.url, "--json",
            "--no-referrers",
        )  # fmt: skip
        assert again.returncode == 0, again.output
        assert [r["status"] for r in again.json()["images"]] == ["skipped"] * len(source.samples)
        images = len(source.samples)
        assert src.count("GET", "/manifests/") == images, src.log
        assert dst.count("HEAD", "/manifests/") == images, dst.log
        assert len(src.log) == images and len(dst.log) == images, (src.log, dst.log)
    finally:
        src.stop()
        dst.stop()


def test_partial_index_still_resolves_children_when_a_target_lacks_it(
    source, new_registry, cli, tmp_path
):
    """The shortcut only skips what every target has: a new target gets the whole index."""
    have, lack = new_registry(), new_registry()
    line = next(s.line for s in source.samples if s.repository == "multi/arch")
    assert cli("copy", line, "--from", source.url, "--to", have.url).returncode == 0
    both = cli("copy", line, "--from", source.url, "--to", have.url, "--to", lack.url, "--json")
    assert both.returncode == 0, both.output
    assert sorted(r["status"] for r in both.json()["images"]) == ["copied", "skipped"]
    check = cli("check", line, "--from", lack.url, "--json")
    assert check.returncode == 0, check.output


def test_plain_http_registries_build_no_tls_context(source, monkeypatch):
    made: list[object] = []
    real = session.make_ssl_context
    monkeypatch.setattr(session, "make_ssl_context", lambda *a: made.append(a) or real(*a))
    client = Registry(RegistryConfig(registry=source.url))
    try:
        sample = source.samples[0]
        assert client.manifest_digest(sample.repository, sample.tag) is not None
    finally:
        client.close()
    assert made == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("maxconn: 0", "line 1: maxconn: Input should be greater than or equal to 1"),
        ("maxconn: abc", "maxconn: Input should be a valid integer, unable to parse string"),
        ("maxconn: 2.5", "maxconn: Input should be a valid integer, got a number with a fract"),
        ("timeout: 5000", "timeout: Input should be less than or equal to 3600"),
        ("timeout: 0", "timeout: Input should be greater than 0"),
        ("lang: fr", "lang: Input should be 'zh_CN' or 'en_US'"),
        ("singlefile: maybe", "singlefile: Input should be a valid boolean"),
        ("cache: 5", "cache: Input should be a valid dictionary or instance of CacheConfig"),
        ("source:\n  - user: x", "line 2: source.0.registry: Field required"),
        ("source:\n  - {registry: h.io, pasword: x}", "source.0.pasword: unknown key"),
        ("webhook: ftp://x", "line 1: webhook: a webhook must be an http:// or https:// URL"),
        ("dingtalk: {}", "dingtalk.0.token: Field required"),
    ],
)
def test_config_errors_keep_their_wording(tmp_path: Path, text: str, message: str):
    """cfg.yaml is checked without pydantic now; the messages read as before."""
    path = tmp_path / "cfg.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)


def test_config_values_are_converted_and_secrets_hidden(tmp_path: Path):
    path = tmp_path / "cfg.yaml"
    path.write_text(
        "maxconn: '7'\nsinglefile: 'yes'\ntimeout: 12\ncache: {keepdays: 1}\n"
        "target:\n  - registry: http://127.0.0.1:5000\n    password: Hunter22\n    user: u\n"
    )
    config = load_config(path)
    assert (config.maxconn, config.singlefile, config.timeout) == (7, True, 12.0)
    assert config.cache is not None and config.cache.keepsize == 10
    entry = config.target[0]
    assert entry.password is not None and entry.password.get_secret_value() == "Hunter22"
    assert "Hunter22" not in repr(config) and "Hunter22" not in str(entry.password)
    assert entry.where("user") == f"{path}, line 8: target.0.user"
    with pytest.raises((AttributeError, ValueError)):  # frozen
        entry.user = "other"  # type: ignore[misc]


def _save_reading_at_finish(source, tmp_path: Path, *, single_file: bool) -> tuple[Path, int]:
    """Save the samples in-process; the bytes the finishing stage read again, and the meta."""
    config = Config()
    images = parse_list(source.list_text(), "list")
    transfer = transfer_options(config, maxconn=4)
    opts = save_options(config, transfer, outdir=tmp_path / "pkg", single_file=single_file)
    seen: list[object] = []
    result = run_save(
        config,
        images.entries,
        RegistryConfig(registry=source.url),
        opts,
        seen.append,
        CancelToken(),
    )
    assert result.ok and result.package is not None, result
    start = next(i for i, e in enumerate(seen) if isinstance(e, StageStarted))
    reread = sum(e.nbytes for e in seen[start:] if isinstance(e, StageProgress))
    return result.package, reread


@pytest.mark.parametrize("single_file", [False, True])
def test_save_hashes_data_files_while_writing(source, new_registry, cli, tmp_path, single_file):
    """Finishing reads back only the few KiB written last (index.json, the tar end), yet the
    meta's sha256 is each data file's own: ``load --verify full`` and ``check`` accept it."""
    meta_path, reread = _save_reading_at_finish(source, tmp_path, single_file=single_file)
    meta = load_meta(meta_path)
    data = [meta_path.parent / d.name for d in meta.datafiles]
    assert len(data) == 1 if single_file else len(data) > 1
    for record, path in zip(meta.datafiles, data, strict=True):
        assert record.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    written = sum(p.stat().st_size for p in data)
    assert reread <= 16 * 1024 * len(data) < written, (reread, written)
    target = new_registry()
    loaded = cli("load", str(meta_path), "--to", target.url, "--verify", "full")
    assert loaded.returncode == 0, loaded.output


def test_a_damaged_data_file_is_still_found(source, cli, tmp_path):
    meta_path, _ = _save_reading_at_finish(source, tmp_path, single_file=True)
    data = meta_path.parent / load_meta(meta_path).datafiles[0].name
    with data.open("r+b") as f:  # one byte inside a blob, past the first header
        f.seek(4096)
        byte = f.read(1)
        f.seek(4096)
        f.write(bytes([byte[0] ^ 0xFF]))
    checked = cli("check", str(meta_path))
    assert checked.returncode != 0 and "damaged" in checked.output, checked.output


def test_running_hash_follows_writes_in_any_order_and_forgets_a_failed_one(tmp_path: Path):
    path = tmp_path / "data.tar"
    parts = [bytes([k]) * (1000 + k) for k in range(4)]
    offsets = [sum(len(p) for p in parts[:k]) for k in range(4)]
    path.write_bytes(b"\0" * sum(map(len, parts)))
    running = RunningHash(path)

    def write(k: int, fail: bool = False) -> None:
        claimed = running.claim(offsets[k])
        with path.open("r+b") as f:
            f.seek(offsets[k])
            f.write(parts[k][:10])
            if claimed:
                running.feed(parts[k][:10])
            if fail:
                running.abandon() if claimed else None
                return
            f.write(parts[k][10:])
            if claimed:
                running.feed(parts[k][10:])
        running.written(offsets[k], offsets[k] + len(parts[k]), claimed)

    write(2)  # past the cursor: waits
    write(0, fail=True)  # hashed as written, then forgotten
    write(0)  # hashed as written; then 1 is missing, 2 waits
    assert running.cursor == offsets[1]
    write(1)  # read back together with 2
    assert running.cursor == offsets[3]
    with path.open("ab") as f:
        f.write(b"tail")
    write(3)
    assert running.finish() == hashlib.sha256(path.read_bytes()).hexdigest()


class Inner(Model):
    media_type: str = Field("", alias="mediaType")


class Outer(Model):
    model_frozen = False
    limits: dict[str, int] = Field(default_factory=dict)
    share: float = Field(0.5, gt=0, lt=1)
    inner: list[Inner] = Field(default_factory=list)
    hidden: str | None = Field(None, exclude=True)


def test_model_checks_what_settings_and_meta_records_declare():
    """core/model.py: aliases, dicts, bounds, frozen or not, model_dump like pydantic's."""

    record = Outer.model_validate({"limits": {"a": "2"}, "inner": [{"mediaType": "x"}]})
    assert record.model_dump(by_alias=True) == {
        "limits": {"a": 2},
        "share": 0.5,
        "inner": [{"mediaType": "x"}],
    }
    assert Outer(inner=[{"media_type": "y"}]).inner[0].media_type == "y"
    record.share = 0.7  # not frozen
    with pytest.raises(AttributeError):
        Inner().media_type = "z"  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"limits": {"a": "x"}, "share": 1, "inner": [{"bad": 1}]})
    assert [(e["loc"], e["type"]) for e in info.value.errors()] == [
        (("limits", "a"), "int_parsing"),
        (("share",), "less_than"),
        (("inner", 0, "bad"), "extra_forbidden"),
    ]


def test_a_copy_command_builds_no_event_class_at_import():
    """Events a run may never send are dataclasses built at their first instance."""
    code = (
        "import dataclasses\n"
        "import imageferry.cli.copy_cmd\n"
        "from imageferry.core import events\n"
        "print(sorted(n for n in ('BlobProgress', 'BlobDone', 'Message', 'StageStarted', "
        "'StageProgress', 'TargetState', 'ImageChecked', 'WatchRound') "
        "if dataclasses.is_dataclass(getattr(events, n))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_command_import_runs_without_collector_passes_and_leaves_it_on(source, tmp_path):
    """The objects a command's import makes are frozen (no collector pass scans them again);
    the collector is on again for the run, and a second main() in the process freezes no more."""
    code = (
        "import gc\n"
        "from imageferry.cli.main import main\n"
        f"args = ['check', {source.samples[0].line!r}, '--from', {source.url!r}]\n"
        "assert main(args) == 0\n"
        "first = gc.get_freeze_count()\n"
        "assert main(args) == 0\n"
        "print(gc.isenabled(), first > 10000, gc.get_freeze_count() <= first)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip().splitlines()[-1] == "True True True", done.stdout + done.stderr


def test_rerun_finds_referrers_by_the_index_alone(new_registry, cli, tmp_path):
    """A rerun with referrers (the default) fetches no child manifest of an index every
    target has: its children's referrers are looked up by the digests the index names. A
    signature added to a child since the last copy is still found and delivered."""
    from support.referrers import SBOM_TYPE, attach
    from test_referrers import build_signed

    server = new_registry()
    made = build_signed(server)
    target = new_registry()
    (tmp_path / "list.txt").write_text(made.list_text())
    first = cli("copy", "-l", "list.txt", "--from", made.url, "--to", target.url)
    assert first.returncode == 0, first.output
    index = made.images["signed/multi:1"]
    children = [str(c.digest) for c in index.children]
    amd = made.client.get_manifest("signed/multi", children[0])
    late = attach(made.client, "signed/multi", amd, SBOM_TYPE, b'{"spdx": "amd64, later"}')
    proxy = FaultProxy(made.port)
    try:
        again = cli("copy", "-l", "list.txt", "--from", proxy.url, "--to", target.url, "--json")
        assert again.returncode == 0, again.output
        fetched = [p for m, p in proxy.log if m == "GET" and "/manifests/" in p]
    finally:
        proxy.stop()
    assert [r["status"] for r in again.json()["images"]] == ["skipped"] * len(made.images)
    assert again.json()["referrers"] == 1  # the new one only
    assert not [p for p in fetched if any(c in p for c in children)], fetched
    assert get_manifest(target.url, "signed/multi", late.digest) == late.manifest.raw
    made.client.close()


def test_every_dataclass_has_a_docstring_of_its_own():
    """Without one, ``dataclass`` writes one from ``inspect.signature`` at import time, in
    every run that imports the class."""
    import dataclasses
    import importlib
    import pkgutil

    import imageferry

    generated = []
    for info in pkgutil.walk_packages(imageferry.__path__, "imageferry."):
        if info.name.startswith(("imageferry.gui", "imageferry.testing", "imageferry.__main__")):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                isinstance(obj, type)
                and obj.__module__ == module.__name__
                and dataclasses.is_dataclass(obj)
                and (obj.__doc__ or "").startswith(f"{name}(")
            ):
                generated.append(f"{module.__name__}.{name}")
    assert not generated
