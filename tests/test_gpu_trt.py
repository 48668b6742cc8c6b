"""The trt backend on a GPU with TensorRT (skipped elsewhere): build, cache hit, staleness, and
results against the CPU chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from upres.runtime.backends import select
from upres.runtime.catalog import WEIGHTS_DIR
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

REASON = select.unavailable("trt")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=str(REASON))]
MODEL = WEIGHTS_DIR / "coarse-x2.onnx"


def test_build_is_cached_and_stale_engines_are_rebuilt(tmp_path: Path) -> None:
    from upres.gpu.engine_cache import EngineCache, Profile
    from upres.gpu.trt_builder import BuildOptions, build_engine

    cache = EngineCache(tmp_path)
    options = BuildOptions("fp32", Profile(16, 64, 96))
    first = build_engine(MODEL, options, cache)
    again = build_engine(MODEL, options, cache)
    assert again == first  # same manifest: loaded from the cache, not rebuilt
    assert cache.timing_cache_path(first.key, first.tensorrt_built).is_file()
    data = json.loads(first.manifest_path.read_text())
    data["key"]["tensorrt"] = "0.0.1"  # as if built by another TensorRT
    first.manifest_path.write_text(json.dumps(data))
    valid, why = cache.check(first.key, first.model)
    assert valid is None and "another key" in why
    rebuilt = build_engine(MODEL, options, cache)
    assert rebuilt.key.tensorrt == first.key.tensorrt


def test_version_compatible_engine_builds_and_loads(tmp_path: Path) -> None:
    from upres.gpu.engine_cache import EngineCache, Profile
    from upres.gpu.trt_backend import TrtModel
    from upres.gpu.trt_builder import BuildOptions, build_engine

    cache = EngineCache(tmp_path)
    built = build_engine(MODEL, BuildOptions("fp32", Profile(16, 64, 96), version_compatible=True), cache)
    assert built.key.version_compatible and built.key.tensorrt.endswith(".x")
    assert TrtModel(built, 2).engine is not None  # its lean runtime is allowed to load


def test_trt_chain_matches_cpu(photo: np.ndarray) -> None:
    from upres.runtime.chain_factory import build_chain

    image = np.ascontiguousarray(photo[:64, :80].astype(np.float32) / 255.0)
    setup = build_chain("faithful", 2, backend="trt", precision="fp32", streams=2)
    try:
        gpu = upscale_array(image, plan_grid(64, 80, 32, setup.chain.halo), setup.chain)
    finally:
        setup.chain.close()
    cpu = build_chain("faithful", 2, backend="ort-cpu").chain
    ref = upscale_array(image, plan_grid(64, 80, 0, cpu.halo), cpu)
    assert np.abs(gpu - ref).max() <= 1.0 / 255.0
