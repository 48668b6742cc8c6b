"""The user cache is optional and self-healing: with no writable cache a run still works (nothing
is saved, one warning line), and a damaged or foreign entry counts as missing: it is recomputed
and overwritten, never trusted and never fatal. Probe cache (foreign models), memory-model cache,
and the TensorRT engine manifests as the CPU paths (`upres inspect`, `upres build --list`) read
them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from support import SAMPLE
from typer.testing import CliRunner

from upres.cli import app
from upres.runtime import memory

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fresh_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # The warning is once per process; each test is a process of its own here.
    import upres.runtime

    cache = getattr(upres.runtime, "cache", None)
    if cache is None:
        try:
            from upres.core import cache
        except ImportError:  # code without the module: its tests fail on their own
            return
    monkeypatch.setattr(cache, "_warned", set())


def _foreign(path: Path, scale: int = 2) -> Path:
    """A foreign (no upres metadata) x2 model: a 3x3 conv, then nearest-neighbour upscaling."""
    w = numpy_helper.from_array(np.full((3, 3, 3, 3), 1 / 27, np.float32), "w")
    s = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "s")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "s"], ["y"], mode="nearest")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w, s])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _image(tmp: Path) -> Path:
    with Image.open(SAMPLE) as im:
        im.convert("RGB").crop((0, 0, 40, 32)).save(tmp / "in.png")
    return tmp / "in.png"


def _run(tmp: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", str(_image(tmp)), "-o", str(tmp / "out"), "--quiet",
                                 "--scale", "2", *extra])
    return result.exit_code, result.output


def _no_probe_subprocess(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Memory probes answered in-process (a line: 1000 B + 40 B per pixel), their sides recorded."""
    sides: list[int] = []

    def probe(model: Path, side: int, *args: object, **kwargs: object) -> dict[str, int]:
        sides.append(side)
        return {"rss_start": 0, "rss_loaded": 500, "peak": 1500 + 40 * side * side}

    monkeypatch.setattr(memory, "probe_once", probe)
    return sides


# ------------------------------------------------------------------------------ no cache


def _blocked(tmp: Path) -> Path:
    """A cache path no one can create, even root: it lies below a regular file."""
    (tmp / "a-file").write_text("not a folder")
    return tmp / "a-file" / "cache"


@pytest.mark.parametrize("model", ["built-in", "foreign"])
@pytest.mark.parametrize("variable", ["UPRES_CACHE_DIR", "XDG_CACHE_HOME", "HOME"])
def test_a_run_works_without_a_writable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              variable: str, model: str) -> None:
    for name in ("UPRES_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(_blocked(tmp_path)))
    extra = ["--model", str(_foreign(tmp_path / "theirs.onnx"))] if model == "foreign" else []
    code, output = _run(tmp_path, *extra)
    assert code == 0, output
    with Image.open(tmp_path / "out" / "in.png") as im:
        assert im.size == (80, 64)
    warnings = [line for line in output.splitlines() if line.startswith("warning: cache")]
    assert len(warnings) == 1 and "Not a directory" in warnings[0], output
    assert "running without it" in warnings[0]
    assert (tmp_path / "a-file").read_text() == "not a folder"  # the user's file is left alone


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes read-only folders")
def test_a_read_only_cache_folder_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    monkeypatch.setenv("UPRES_CACHE_DIR", str(ro))
    try:
        code, output = _run(tmp_path, "--model", str(_foreign(tmp_path / "theirs.onnx")))
    finally:
        ro.chmod(0o700)
    assert code == 0, output
    assert "Permission denied" in output


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.core.cache import cache_dir
    from upres.core.cache import cache_dir as catalog_cache_dir

    assert catalog_cache_dir is cache_dir  # the old import keeps working
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"
    monkeypatch.delenv("UPRES_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "upres"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid per the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "upres"


# ------------------------------------------------------------------------------ probe cache

# Damage -> what is written where the entry goes.
DAMAGE = {
    "truncated": '{"name": "theirs", "kind": "foreign", "sca',
    "empty": "",
    "not-utf8": b"\xff\xfe{}",
    "a-list": "[1, 2, 3]",
    "wrong-types": None,  # filled from the real entry below
    "newer-format": None,
    "nonsense-values": None,
}


def _damage(entry: Path, how: str, good: dict) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    if how == "a-folder":
        entry.unlink(missing_ok=True)
        (entry / "inside").mkdir(parents=True)
        return
    text = DAMAGE[how]
    if how == "wrong-types":
        text = json.dumps({**good, "scale": "2", "receptive_field": 1.5})
    elif how == "newer-format":
        text = json.dumps({**good, "tile_alignment_v3": [1, 2]})
    elif how == "nonsense-values":
        text = json.dumps({**good, "scale": 0})
    entry.write_bytes(text if isinstance(text, bytes) else text.encode())


@pytest.mark.parametrize("how", [*DAMAGE, "a-folder"])
def test_a_damaged_probe_entry_is_probed_again_and_overwritten(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               how: str) -> None:
    from upres.runtime.catalog import probe_cache_path, resolve

    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    model = _foreign(tmp_path / "theirs.onnx")
    good = resolve(model)
    entry = probe_cache_path(good.sha256)
    assert json.loads(entry.read_text()) == asdict(good.info)
    _damage(entry, how, asdict(good.info))
    again = resolve(model)
    assert again.info == good.info and again.probed
    assert json.loads(entry.read_text()) == asdict(good.info)  # healed in place
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporaries left


def test_a_file_where_the_probes_folder_goes_is_replaced(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.runtime.catalog import probe_cache_path, resolve

    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "probes").write_text("stray")
    ref = resolve(_foreign(tmp_path / "theirs.onnx"))
    assert ref.info.scale == 2
    assert json.loads(probe_cache_path(ref.sha256).read_text())["scale"] == 2


def test_an_entry_of_another_file_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.runtime.catalog import probe_cache_path, resolve

    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    ref = resolve(_foreign(tmp_path / "theirs.onnx"))
    entry = probe_cache_path(ref.sha256)
    entry.write_text(json.dumps({**asdict(ref.info), "weights_sha256": "0" * 64, "scale": 4}))
    assert resolve(tmp_path / "theirs.onnx").info.scale == 2


# ------------------------------------------------------------------------------ memory cache


def _memory_damage(entry: Path, how: str) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    from upres.runtime.memory import _CACHE_VERSION

    good = {"version": _CACHE_VERSION, "base": 1000.0, "per_pixel": 40.0,
            "samples": [[2304, 93160]], "session": 0}
    if how == "a-folder":
        (entry / "inside").mkdir(parents=True)
        return
    text = {
        "truncated": '{"version": 1, "base": 10',
        "a-list": "[]",
        "null": "null",
        "strings": json.dumps({**good, "base": "1000", "per_pixel": "40"}),
        "nan": json.dumps({**good, "per_pixel": float("nan")}),
        "negative-slope": json.dumps({**good, "per_pixel": -5.0}),
        "bad-samples": json.dumps({**good, "samples": [[1, 2, 3]]}),
        "no-samples": json.dumps({**good, "samples": []}),
        "bools": json.dumps({**good, "session": True}),
        "newer-version": json.dumps({**good, "version": good["version"] + 1}),
    }[how]
    entry.write_text(text)


MEMORY_DAMAGE = ["truncated", "a-list", "null", "strings", "nan", "negative-slope", "bad-samples",
                 "no-samples", "bools", "newer-version", "a-folder"]


@pytest.mark.parametrize("how", MEMORY_DAMAGE)
def test_a_damaged_memory_entry_is_measured_again_and_overwritten(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  how: str) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    sides = _no_probe_subprocess(monkeypatch)
    entry = memory.memory_cache_path("feedc0de")
    _memory_damage(entry, how)
    model = memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48, 96))
    assert sides == [48, 96]  # measured, not read
    assert model.per_pixel == pytest.approx(40.0) and model.base == pytest.approx(1000.0)
    assert memory.MemoryModel.from_dict(json.loads(entry.read_text())) == model
    assert memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48, 96)) == model
    assert sides == [48, 96]  # the healed entry is read


def test_a_file_where_the_memory_folder_goes_is_replaced(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    _no_probe_subprocess(monkeypatch)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "memory").write_text("stray")
    model = memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48,))
    assert memory.memory_cache_path("feedc0de").is_file() and model.per_pixel > 0


def test_an_unwritable_memory_cache_still_gives_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("UPRES_CACHE_DIR", str(_blocked(tmp_path)))
    sides = _no_probe_subprocess(monkeypatch)
    first = memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48,))
    second = memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48,))
    assert first == second and sides == [48, 48]  # measured twice: nothing could be saved
    assert capsys.readouterr().err.count("warning: cache") == 1


def test_the_cache_root_itself_is_never_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # $UPRES_CACHE_DIR naming a file of the user's: the cache is off, the file untouched.
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "notes.txt"))
    _no_probe_subprocess(monkeypatch)
    memory.measure_memory_model(Path("m.onnx"), "feedc0de", sides=(48,))
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ engine manifests


def _engines(tmp: Path) -> Path:
    from upres.gpu.engine_cache import EngineCache, EngineKey, Profile

    cache = EngineCache(tmp / "cache" / "engines")
    key = EngineKey("ab" * 32, "10.13.0", "NVIDIA H200", "9.0", "fp16", Profile(16, 256, 256))
    cache.store(key, "coarse-x2", b"engine bytes", tensorrt_built="10.13.0", activation_bytes=1,
                inputs={"input": "HALF"}, outputs={"output": "HALF"}, build_seconds=1.0)
    root = tmp / "cache" / "engines"
    for name, text in (("a-list.json", "[1, 2]"), ("null.json", "null"), ("truncated.json", '{"form'),
                       ("wrong-types.json", json.dumps({"format": 2, "key": "abc", "engine_file": 3})),
                       ("nested.json", "[" * 100_000 + "]" * 100_000)):
        (root / name).write_text(text)
    (root / "folder.json").mkdir()
    return root


def test_damaged_engine_manifests_are_listed_as_unreadable(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from upres.gpu.engine_cache import CachedEngine, EngineCache

    root = _engines(tmp_path)
    entries = EngineCache(root).entries()
    good = [e for e in entries if isinstance(e, CachedEngine)]
    bad = {p.name: why for e in entries if not isinstance(e, CachedEngine) for p, why in [e]}
    assert len(good) == 1
    assert sorted(bad) == ["a-list.json", "folder.json", "nested.json", "null.json", "truncated.json",
                           "wrong-types.json"]
    assert all("unreadable manifest" in why for why in bad.values()), bad
    # The damaged ones do not hide the valid engine from the planner.
    cache = EngineCache(root)
    assert cache.usable("ab" * 32, "fp16", "10.13.0", "NVIDIA H200", (9, 0)) == good

    monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    result = runner.invoke(app, ["inspect", "coarse-x2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["build", "--list", "--cache", str(root)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("how", ["a-file", "blocked"])
def test_inspect_works_when_the_engine_folder_cannot_be_read(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             how: str) -> None:
    if how == "a-file":
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "engines").write_text("stray")
        monkeypatch.setenv("UPRES_CACHE_DIR", str(tmp_path / "cache"))
    else:
        monkeypatch.setenv("UPRES_CACHE_DIR", str(_blocked(tmp_path)))
    result = runner.invoke(app, ["inspect", "coarse-x2"])
    assert result.exit_code == 0, result.output
    assert "upres metadata" in result.output


def test_a_manifest_folder_under_the_engines_name_is_not_built_yet(tmp_path: Path) -> None:
    from upres.gpu.engine_cache import EngineCache, EngineKey, Profile

    cache = EngineCache(tmp_path / "engines")
    key = EngineKey("cd" * 32, "10.13.0", "NVIDIA H200", "9.0", "fp16", Profile(16, 256, 256))
    _, manifest = cache.paths(key, "refine")
    manifest.mkdir(parents=True)
    engine, why = cache.check(key, "refine")
    assert engine is None and why
