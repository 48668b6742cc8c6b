"""TensorRT engine cache: keys, manifests and the staleness rules (no TensorRT or GPU needed)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pytest
from typer.testing import CliRunner

from upres.cli import app
from upres.gpu.engine_cache import (
    HW_COMPAT_GPU,
    CachedEngine,
    EngineCache,
    EngineKey,
    Profile,
    StaleEngine,
    device_fields,
    tensorrt_field,
    version_tuple,
)
from upres.gpu.trt_builder import BuildOptions, check_precision, engine_key, graph_precision, tensorrt_missing
from upres.runtime.catalog import WEIGHTS_DIR

KEY = EngineKey("ab" * 32, "11.1.0", "NVIDIA H100 80GB HBM3", "9.0", "fp16", Profile(16, 256, 512))


def _store(cache: EngineCache, key: EngineKey = KEY, data: bytes = b"engine-bytes",
           built: str | None = None) -> CachedEngine:
    return cache.store(key, "coarse-x4", data, tensorrt_built=built or key.tensorrt,
                       activation_bytes=123_456_789, inputs={"lr": "FLOAT"}, outputs={"hr": "FLOAT"},
                       build_seconds=1.5)


def test_profile_parse_and_for_tile() -> None:
    assert Profile.parse("64:256:512") == Profile(64, 256, 512)
    assert str(Profile.for_tile(300)) == "16:300:300"
    assert Profile.for_tile(8) == Profile(8, 8, 8)
    assert Profile(16, 256, 512).covers(512) and not Profile(16, 256, 512).covers(513)
    for bad in ("64:256", "a:b:c", "512:256:64", "0:1:2"):
        with pytest.raises(ValueError, match="MIN"):
            Profile.parse(bad)


def test_every_key_field_changes_the_digest() -> None:
    changed = {"onnx_sha256": "cd" * 32, "tensorrt": "10.13.0", "gpu": "NVIDIA L4",
               "compute_capability": "8.9", "precision": "int8", "profile": Profile(16, 256, 1024),
               "batch": 4, "workspace": 1 << 30, "optimization_level": 5, "hardware_compat": True,
               "version_compatible": True}
    assert set(changed) == {f.name for f in dataclasses.fields(EngineKey)}
    digests = {KEY.digest()}
    for name, value in changed.items():
        digests.add(dataclasses.replace(KEY, **{name: value}).digest())
    assert len(digests) == len(changed) + 1
    assert EngineKey.from_dict(json.loads(json.dumps(KEY.to_dict()))) == KEY


def test_store_then_check_roundtrip(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    stored = _store(cache)
    found, why = cache.check(KEY, "coarse-x4")
    assert why == "" and found == stored
    assert found.read_verified() == b"engine-bytes"
    assert found.activation_bytes == 123_456_789
    manifest = json.loads(found.manifest_path.read_text())
    assert manifest["key"]["gpu"] == KEY.gpu and manifest["engine_file"] == found.engine_path.name
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(("field", "value"), [
    ("tensorrt", "10.13.0"),  # built by another TensorRT
    ("gpu", "NVIDIA A100-SXM4-80GB"),  # built on another GPU
    ("compute_capability", "8.0"),
    ("onnx_sha256", "ef" * 32),  # the ONNX changed
    ("profile", Profile(16, 512, 512)),
])
def test_other_keys_do_not_find_it(tmp_path: Path, field: str, value: object) -> None:
    cache = EngineCache(tmp_path)
    _store(cache)
    found, why = cache.check(dataclasses.replace(KEY, **{field: value}), "coarse-x4")
    assert found is None and why == "not built yet"


def test_foreign_manifest_under_our_name_is_stale(tmp_path: Path) -> None:
    """An engine copied in from another machine (its manifest names another GPU) is never loaded."""
    cache = EngineCache(tmp_path)
    foreign = dataclasses.replace(KEY, gpu="NVIDIA L4", compute_capability="8.9")
    stored = _store(cache, foreign)
    ours_engine, ours_manifest = cache.paths(KEY, "coarse-x4")
    stored.engine_path.rename(ours_engine)
    data = json.loads(stored.manifest_path.read_text())
    data["engine_file"] = ours_engine.name
    ours_manifest.write_text(json.dumps(data))
    found, why = cache.check(KEY, "coarse-x4")
    assert found is None
    assert "another key" in why and "NVIDIA L4" in why and "8.9" in why


def test_damaged_engine_is_stale(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    stored = _store(cache)
    stored.engine_path.write_bytes(b"engine-bytez")  # same size, other bytes
    found, _ = cache.check(KEY, "coarse-x4")
    assert found is not None
    with pytest.raises(StaleEngine, match="contents changed"):
        found.read_verified()
    stored.engine_path.write_bytes(b"short")
    assert cache.check(KEY, "coarse-x4") == (None, f"{stored.engine_path.name}: size differs from "
                                             "its manifest (damaged)")
    stored.engine_path.unlink()
    assert "missing" in cache.check(KEY, "coarse-x4")[1]


def test_unreadable_or_old_manifest_is_stale(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    stored = _store(cache)
    data = json.loads(stored.manifest_path.read_text())
    stored.manifest_path.write_text(json.dumps({**data, "format": 0}))
    assert "manifest format" in cache.check(KEY, "coarse-x4")[1]
    stored.manifest_path.write_text("{not json")
    assert "unreadable manifest" in cache.check(KEY, "coarse-x4")[1]
    assert isinstance(cache.entries()[0], tuple)


def test_usable_filters_by_gpu_tensorrt_and_precision(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    _store(cache)
    _store(cache, dataclasses.replace(KEY, profile=Profile(16, 1024, 1024)))
    _store(cache, dataclasses.replace(KEY, tensorrt="10.13.0"))
    _store(cache, dataclasses.replace(KEY, gpu="NVIDIA L4", compute_capability="8.9"))
    _store(cache, dataclasses.replace(KEY, precision="int8"))
    found = cache.usable(KEY.onnx_sha256, "fp16", "11.1.0", KEY.gpu, (9, 0))
    assert [e.key.profile.max for e in found] == [1024, 512]  # largest profile first
    assert cache.usable(KEY.onnx_sha256, "fp16", "11.1.0", "NVIDIA L4", (8, 9))[0].key.gpu == "NVIDIA L4"
    assert cache.usable(KEY.onnx_sha256, "fp16", "12.0.0", KEY.gpu, (9, 0)) == []


def test_hardware_compatible_engines_serve_any_ampere_plus(tmp_path: Path) -> None:
    assert device_fields("NVIDIA H100", (9, 0), True) == (HW_COMPAT_GPU, "8.0+")
    assert device_fields("NVIDIA H100", (9, 0), False) == ("NVIDIA H100", "9.0")
    opts = BuildOptions("fp16", Profile(16, 256, 256), hardware_compat=True)
    key = engine_key(KEY.onnx_sha256, opts, "11.1.0", "NVIDIA H100", (9, 0))
    assert key == engine_key(KEY.onnx_sha256, opts, "11.1.0", "NVIDIA A10", (8, 6))
    cache = EngineCache(tmp_path)
    _store(cache, key)
    assert len(cache.usable(KEY.onnx_sha256, "fp16", "11.1.0", "NVIDIA A10", (8, 6))) == 1
    assert cache.usable(KEY.onnx_sha256, "fp16", "11.1.0", "Tesla T4", (7, 5)) == []


def test_version_compatible_engines_serve_later_tensorrt_of_the_same_major(tmp_path: Path) -> None:
    assert tensorrt_field("10.13.0.35", True) == "10.x"
    assert tensorrt_field("10.13.0.35", False) == "10.13.0.35"
    assert version_tuple("10.13.0.35") == (10, 13, 0, 35) and version_tuple("11.0.0rc1") == (11, 0, 0)
    assert version_tuple("10.9.0") < version_tuple("10.13.0")  # numeric, not text, order
    opts = BuildOptions("fp16", Profile(16, 256, 256), version_compatible=True)
    key = engine_key(KEY.onnx_sha256, opts, "10.13.0", "NVIDIA H100", (9, 0))
    assert key.tensorrt == "10.x"
    assert key == engine_key(KEY.onnx_sha256, opts, "10.16.1", "NVIDIA H100", (9, 0))
    cache = EngineCache(tmp_path)
    _store(cache, key, built="10.13.0")
    for later in ("10.13.0", "10.16.1"):
        assert len(cache.usable(KEY.onnx_sha256, "fp16", later, "NVIDIA H100", (9, 0))) == 1
    assert cache.usable(KEY.onnx_sha256, "fp16", "10.9.0", "NVIDIA H100", (9, 0)) == []  # earlier
    assert cache.usable(KEY.onnx_sha256, "fp16", "11.0.0", "NVIDIA H100", (9, 0)) == []  # other major
    found, why = cache.check(key, "coarse-x4", "10.9.0")
    assert found is None and "built by TensorRT 10.13.0, newer than this TensorRT 10.9.0" in why
    assert cache.check(key, "coarse-x4", "10.16.1")[0] is not None
    # An engine built without the flag is still pinned to its exact version.
    exact = engine_key(KEY.onnx_sha256, BuildOptions("fp16", Profile(16, 256, 256)), "10.13.0",
                       "NVIDIA H100", (9, 0))
    _store(cache, exact)
    assert [e.key.version_compatible for e in
            cache.usable(KEY.onnx_sha256, "fp16", "10.13.0", "NVIDIA H100", (9, 0))] in ([True, False],
                                                                                         [False, True])
    assert len(cache.usable(KEY.onnx_sha256, "fp16", "10.16.1", "NVIDIA H100", (9, 0))) == 1


def test_timing_cache_is_per_gpu_and_tensorrt(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    a = cache.timing_cache_path(KEY, "11.1.0")
    assert a == cache.timing_cache_path(dataclasses.replace(KEY, precision="int8", batch=4), "11.1.0")
    assert a != cache.timing_cache_path(dataclasses.replace(KEY, gpu="NVIDIA L4"), "11.1.0")
    assert a != cache.timing_cache_path(KEY, "10.13.0")
    assert a.parent == tmp_path and a.name.endswith(".cache")


def test_graph_precision_of_shipped_models() -> None:
    assert graph_precision(onnx.load(str(WEIGHTS_DIR / "coarse-x4.onnx"))) == "fp32"
    assert graph_precision(onnx.load(str(WEIGHTS_DIR / "coarse-x4.int8.onnx"))) == "int8"
    check_precision(WEIGHTS_DIR / "coarse-x4.int8.onnx", "int8")
    with pytest.raises(ValueError, match=r"strongly typed.*upres calibrate --precision fp16"):
        check_precision(WEIGHTS_DIR / "coarse-x4.onnx", "fp16")


def test_build_command_lists_and_refuses_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    cache = EngineCache(tmp_path)
    listed = runner.invoke(app, ["build", "--list", "--cache", str(tmp_path)])
    assert listed.exit_code == 0 and "no engines" in listed.output
    _store(cache)
    listed = runner.invoke(app, ["build", "--list", "--cache", str(tmp_path)], env={"COLUMNS": "250"})
    assert listed.exit_code == 0 and "16:256:512" in listed.output and "valid" in listed.output
    _store(cache, dataclasses.replace(KEY, tensorrt="11.x", version_compatible=True), built="11.1.0")
    listed = runner.invoke(app, ["build", "--list", "--cache", str(tmp_path)], env={"COLUMNS": "250"})
    assert "11.1.0 (any later 11.x)" in listed.output
    bad = runner.invoke(app, ["build", str(WEIGHTS_DIR / "coarse-x4.onnx"), "--profile", "1:2"])
    assert bad.exit_code == 2 and "MIN:OPT:MAX" in bad.output
    built = runner.invoke(app, ["build", str(WEIGHTS_DIR / "coarse-x4.onnx"), "--precision", "fp32",
                                "--tile", "128", "--version-compatible", "--cache", str(tmp_path)])
    if tensorrt_missing() is not None:
        assert built.exit_code == 2 and "tensorrt" in built.output
    # A built-in name resolves to its graph of that precision; a missing one says how to make it.
    named = runner.invoke(app, ["build", "coarse-x2", "--precision", "int8", "--tile", "64",
                                "--cache", str(tmp_path)], env={"COLUMNS": "250"})
    if tensorrt_missing() is not None:
        assert named.exit_code == 2 and "tensorrt" in named.output
    missing = runner.invoke(app, ["build", "coarse-x4", "--precision", "fp16"], env={"COLUMNS": "250"})
    assert missing.exit_code == 2 and "`upres calibrate` makes fp16 graphs" in missing.output
