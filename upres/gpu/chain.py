"""A tile chain (`upres.runtime.chain.TileChain`) that runs on the GPU pipeline.

`map_tiles` takes the tiles of a grid in order and keeps several in flight; `upres.runtime.upscale`
hands every chain the whole sequence, so the tiler, blending and writers are the same as on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from upres.gpu.kernel_launch import CudaKernels
from upres.gpu.memory import DevicePool
from upres.gpu.pipeline import TilePipeline
from upres.kernels.edges import SOBEL_RADIUS
from upres.runtime.chain import DevicePlan, TileChain
from upres.runtime.memory import MemoryModel


class Closable(Protocol):
    def close(self) -> None: ...


def chain_halo(scale: int, coarse_rf: int, refine_rf: int | None) -> int:
    """The same halo as the CPU chains (FaithfulChain / HybridChain): coarse field, plus the
    refine field and the Sobel radius brought back to input pixels."""
    if refine_rf is None:
        return coarse_rf
    return coarse_rf + math.ceil((refine_rf + SOBEL_RADIUS) / scale)


@dataclass
class GpuChain(TileChain):
    pipeline: TilePipeline
    scale: int
    reach: int  # the halo, fixed when the device plan was made (read back through `halo`)
    plan: DevicePlan
    backend: str
    hybrid: bool
    free_at_open: int = 0  # the driver's free device memory before the models were loaded
    _resources: list[Closable] = field(default_factory=list, repr=False)

    @property
    def halo(self) -> int:
        return self.reach

    @property
    def texture(self) -> float | None:
        return self.pipeline.texture if self.hybrid else None

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return next(iter(self.pipeline.map_tiles([tile])))

    def map_tiles(self, tiles: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        return self.pipeline.map_tiles(tiles)

    def add_resource(self, resource: Closable) -> None:
        """Something with `close()` that lives as long as the chain (closed in reverse order)."""
        self._resources.append(resource)

    @property
    def pool_bytes(self) -> int:
        pools = [r for r in self._resources if isinstance(r, DevicePool)]
        return sum(p.capacity for p in pools)

    def host_memory_model(self) -> list[tuple[MemoryModel, int]]:
        # Activations live on the device (planned there); the host holds each stream's pinned
        # staging, an input tile and an output tile of float32 RGB.
        s = self.scale
        return [(MemoryModel(0.0, self.plan.streams * 3 * 4 * (1 + s * s), ()), 1)]

    def device_plan(self) -> DevicePlan:
        return self.plan

    def device_report(self) -> dict[str, int]:
        """Device memory measured so far, beside the target and the plan: what upres allocated
        at its peak (the pool, plus the engines' weights for trt, or plus PyTorch's reserved peak
        for torch-cuda) and what the driver saw in use at the lowest free point (cudaMemGetInfo,
        which also counts library code loaded on first use and other processes)."""
        if self.backend == "torch-cuda":
            from upres.gpu.torch_backend import torch_peak

            allocated = self.pool_bytes + torch_peak()[1]
        else:
            allocated = self.pool_bytes + self.plan.resident
        return {"target": self.plan.target, "planned": self.plan.total, "peak_allocated": allocated,
                "peak_driver": max(0, self.free_at_open - self.pipeline.lowest_free)}

    def close(self) -> None:
        self.pipeline.close()
        for r in reversed(self._resources):
            r.close()
        self._resources = []


def assemble(backend: str, steps: list, plan: DevicePlan, scale: int, halo: int,
             texture: float, kernels: CudaKernels, free_at_open: int = 0) -> GpuChain:
    """Pool of exactly the planned size, lanes, pipeline: the chain that owns them."""
    from upres.gpu.buffers import LaneLayout

    hybrid = len(steps) > 1
    layout = LaneLayout(plan.side, scale, hybrid)
    pooled = plan.activation_per_stream if any(s.pooled for s in steps) else 0
    pool = DevicePool(plan.streams * (plan.io_per_stream + pooled))
    pipeline = TilePipeline(kernels, pool, layout, plan.streams, steps[0],
                            steps[1] if hybrid else None, texture)
    return GpuChain(pipeline, scale, halo, plan, backend, hybrid, free_at_open, [kernels, pool])
