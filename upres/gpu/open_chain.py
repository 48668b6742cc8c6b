"""Open a GPU chain for `upres run`: device, models (TensorRT engines or PyTorch weights), the
device memory plan, the pool and the pipeline, with errors that say what is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from upres.core.errors import BackendUnavailable
from upres.core.model import ModelRef
from upres.gpu.chain import GpuChain, assemble, chain_halo
from upres.gpu.cuda import gpu_missing, init_device, mem_get_info
from upres.gpu.planning import DEFAULT_STREAMS, DevicePlan, plan_device

DEFAULT_TARGET_FRACTION = 0.9  # of the device memory free at start, when --memory is not given
DEFAULT_TRT_SIDE = 512  # engine profile built on first use when none is cached


def _activation(steps: list[Any], scale: int) -> Callable[[int], int | None]:
    def act(side: int) -> int | None:
        sizes = [s.activation_bytes(side if i == 0 else side * scale) for i, s in enumerate(steps)]
        return None if any(v is None for v in sizes) else max(sizes)

    return act


def _torch_steps(coarse: ModelRef, refine: ModelRef | None, precision: str) -> list[Any]:
    from upres.gpu.torch_backend import TorchModel

    steps = [TorchModel(coarse.path.with_suffix(".pt"), coarse.info.scale, coarse.info.input_channels,
                        coarse.info.output_channels, precision)]
    if refine is not None:
        steps.append(TorchModel(refine.path.with_suffix(".pt"), 1, refine.info.input_channels,
                                refine.info.output_channels, "fp32"))
    return steps


def _trt_steps(coarse: ModelRef, refine: ModelRef | None, precision: str,
               log: Callable[[str], None], cache_root: Path | None) -> list[Any]:
    from upres.gpu.cuda import device_info
    from upres.gpu.engine_cache import EngineCache, Profile
    from upres.gpu.trt_backend import TrtModel
    from upres.gpu.trt_builder import BuildOptions, build_engine, require_tensorrt

    trt = require_tensorrt("trt backend")
    cache = EngineCache(cache_root)
    dev = device_info(0)

    def engine_for(ref: ModelRef, prec: str, side: int) -> Any:
        found = cache.usable(ref.sha256, prec, str(trt.__version__), dev.name, dev.compute_capability)
        if found:
            return found[0]
        log(f"no cached TensorRT engine for {ref.path.name} ({prec}) on {dev.name}: building one "
            f"(profile {Profile.for_tile(side)}; `upres build` makes others)")
        return build_engine(ref.path, BuildOptions(prec, Profile.for_tile(side)), cache, log)

    s = coarse.info.scale
    first = engine_for(coarse, precision, DEFAULT_TRT_SIDE)
    steps: list[Any] = [TrtModel(first, s)]
    if refine is not None:
        steps.append(TrtModel(engine_for(refine, "fp32", first.key.profile.max * s), 1))
    return steps


def pipeline_unavailable(name: str) -> str | None:
    """Why the GPU pipeline backend ``name`` (trt, torch-cuda) cannot run here, or None. Imports
    torch only for torch-cuda. The runtime's backend registry calls this by name."""
    from upres.gpu.cuda import gpu_missing
    from upres.gpu.kernel_compile import nvrtc_missing

    if name == "trt":
        from upres.gpu.trt_builder import tensorrt_missing

        missing = tensorrt_missing()
        if missing:
            return f"trt: {missing}; or use --backend torch-cuda (PyTorch on CUDA) or ort-cpu"
    elif name == "torch-cuda":
        from upres.gpu.torch_backend import torch_cuda_missing

        missing = torch_cuda_missing()
        if missing:
            return f"torch-cuda: {missing}"
    else:
        raise ValueError(f"{name} is not a GPU pipeline backend (trt, torch-cuda)")
    for why in (gpu_missing(), nvrtc_missing()):
        if why:
            return f"{name}: {why}"
    return None


def open_gpu_chain(backend: str, coarse: ModelRef, refine: ModelRef | None, texture: float,
                   precision: str, memory_target: int | None, streams: int = DEFAULT_STREAMS,
                   log: Callable[[str], None] = lambda _: None,
                   cache_root: Path | None = None) -> GpuChain:
    missing = gpu_missing()
    if missing:
        raise BackendUnavailable(f"{backend}: {missing}")
    device = init_device(0)
    from upres.gpu.kernel_compile import nvrtc_missing

    no_nvrtc = nvrtc_missing()
    if no_nvrtc:
        raise BackendUnavailable(f"{backend}: the GPU kernels need NVRTC: {no_nvrtc}")
    from upres.gpu.kernel_launch import CudaKernels

    if backend not in ("torch-cuda", "trt"):
        raise ValueError(f"{backend} is not a GPU pipeline backend")
    # Model memory is measured, not estimated: what the device lost while loading the models.
    free_before = mem_get_info()[0]
    if backend == "torch-cuda":
        steps = _torch_steps(coarse, refine, precision)
        max_side = 2048
        import torch

        resident = int(torch.cuda.memory_allocated())
    else:
        steps = _trt_steps(coarse, refine, precision, log, cache_root)
        max_side = steps[0].cached.key.profile.max
        resident = max(0, free_before - mem_get_info()[0])
    scale = coarse.info.scale
    halo = chain_halo(scale, coarse.info.receptive_field,
                      refine.info.receptive_field if refine is not None else None)
    target = memory_target or int(mem_get_info()[0] * DEFAULT_TARGET_FRACTION)
    plan: DevicePlan = plan_device(target, scale=scale, halo=halo, hybrid=refine is not None,
                                   activation=_activation(steps, scale), streams=streams,
                                   max_side=max_side, resident=resident)
    chain = assemble(backend, steps, plan, scale, halo, texture, CudaKernels(device), free_before)
    if backend == "torch-cuda":
        from upres.gpu.torch_backend import TorchMemoryCap, reset_torch_peak

        # PyTorch may hold the weights and the planned activations, nothing more.
        chain.add_resource(TorchMemoryCap(resident + plan.streams * plan.activation_per_stream))
        reset_torch_peak()  # the run's peak, not the activation probes' (up to a larger tile)
    return chain
