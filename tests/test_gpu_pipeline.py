"""The torch-cuda backend on the CUDA-stream pipeline, on a GPU (skipped elsewhere): tiled equals
whole image, 3 streams equal 1 stream, results match the CPU chains, device memory stays within
the target."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import skip_unless_ready

from upres.core.sizes import GIB, MIB
from upres.runtime.backends import select
from upres.runtime.chain_factory import build_chain
from upres.runtime.tiling import plan_grid
from upres.runtime.upscale import upscale_array

LEVEL = 1.0 / 255.0
REASON = select.unavailable("torch-cuda")
pytestmark = [pytest.mark.gpu, skip_unless_ready(REASON)]


def _image(photo: np.ndarray, h: int = 90, w: int = 130) -> np.ndarray:
    return np.ascontiguousarray(photo[:h, :w].astype(np.float32) / 255.0)


def _run(image: np.ndarray, mode: str, streams: int, tile: int, memory: int = 2 * GIB,
         scale: int = 2) -> tuple[np.ndarray, dict[str, float], dict[str, object]]:
    setup = build_chain(mode, scale, backend="torch-cuda", memory=memory, streams=streams)
    chain = setup.chain
    try:
        grid = plan_grid(image.shape[0], image.shape[1], tile, chain.halo)
        out = upscale_array(image, grid, chain)
        return out, chain.pipeline.stats.summary(), chain.plan.to_dict()
    finally:
        chain.close()


@pytest.mark.parametrize("mode", ["faithful", "hybrid"])
def test_tiled_equals_whole_image(photo: np.ndarray, mode: str) -> None:
    image = _image(photo)
    whole, _, _ = _run(image, mode, 1, 0)
    tiled, stats, _ = _run(image, mode, 3, 32)
    assert stats["tiles"] > 4
    assert np.abs(tiled - whole).max() <= LEVEL


@pytest.mark.parametrize("mode", ["faithful", "hybrid"])
def test_three_streams_equal_one_stream(photo: np.ndarray, mode: str) -> None:
    image = _image(photo)
    one, _, _ = _run(image, mode, 1, 32)
    three, _, plan = _run(image, mode, 3, 32)
    assert plan["streams"] == 3
    np.testing.assert_array_equal(three, one)


@pytest.mark.parametrize("mode", ["faithful", "hybrid"])
def test_matches_the_cpu_chain(photo: np.ndarray, mode: str) -> None:
    image = _image(photo, 64, 80)
    gpu, _, _ = _run(image, mode, 2, 32)
    cpu_setup = build_chain(mode, 2, backend="ort-cpu")
    cpu = upscale_array(image, plan_grid(64, 80, 0, cpu_setup.chain.halo), cpu_setup.chain)
    assert np.abs(gpu - cpu).max() <= LEVEL


def test_peak_device_memory_within_target(photo: np.ndarray) -> None:
    """What upres allocates (the pool, and everything PyTorch's allocator reserves) stays under
    --memory. Driver-level use (cudaMemGetInfo) also holds library code loaded on first use;
    benchmarks/gpu_bench.py reports it beside the target."""
    import torch

    target = 1536 * MIB
    setup = build_chain("hybrid", 4, backend="torch-cuda", memory=target, streams=3)
    chain = setup.chain
    try:
        image = _image(photo, 160, 200)
        grid = plan_grid(160, 200, chain.plan.core, chain.halo)
        upscale_array(image, grid, chain)
        torch.cuda.synchronize()
        peak = chain.pool_bytes + torch.cuda.max_memory_reserved()
        reported = setup.describe()["device_memory"]  # what `upres run --report` writes
    finally:
        chain.close()
    assert chain.plan.total <= target
    assert peak <= target, f"pool + PyTorch reserved = {peak} > target {target}"
    assert reported["target"] == target and reported["peak_allocated"] == peak
    assert reported["peak_driver"] > 0


def test_tile_larger_than_the_plan_is_refused(photo: np.ndarray) -> None:
    setup = build_chain("faithful", 2, backend="torch-cuda", memory=2 * GIB, streams=1)
    try:
        side = setup.chain.plan.side
        with pytest.raises(ValueError, match="exceeds the planned"):
            setup.chain(np.zeros((side + 1, 8, 3), np.float32))
    finally:
        setup.chain.close()
