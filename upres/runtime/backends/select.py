"""Pick and create a backend by name (upres.runtime.backends.registry); `auto` takes the best one
present and says why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from upres.core.errors import BackendUnavailable
from upres.runtime.backends.base import Backend, BackendChoice
from upres.runtime.backends.onnxruntime_backend import OrtBackend, available_providers
from upres.runtime.backends.registry import REGISTRY, SPECS, Runs, spec
from upres.runtime.backends.triton_backend import TritonBackend, is_triton, parse_target

# "auto" and the registered backends, in the order --backend's help lists them.
BACKENDS = ("auto", *REGISTRY)
# Backends that run a whole tile chain on the CUDA-stream pipeline (upres.gpu), not one model.
GPU_PIPELINE = tuple(s.name for s in SPECS if s.runs is Runs.CHAIN)


def unavailable(name: str) -> str | None:
    """Why a GPU pipeline backend cannot run here, or None. Imports torch only for torch-cuda."""
    found = spec(name)
    if found.runs is not Runs.CHAIN:
        raise ValueError(f"{name} is not a GPU pipeline backend ({', '.join(GPU_PIPELINE)})")
    return found.why_unavailable()


def choose(name: str) -> BackendChoice:
    if is_triton(name):
        return BackendChoice(name, f"requested: tiles served by Triton at {parse_target(name).address}")
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)} or triton://HOST:PORT[/MODEL], "
                         f"got {name!r}")
    if name != "auto":
        return BackendChoice(name, "requested")
    # torch-cuda is never picked here: finding out whether it could run means importing torch,
    # which `upres run` does only when asked to.
    if importlib.util.find_spec("tensorrt") is not None and unavailable("trt") is None:
        return BackendChoice("trt", "TensorRT, cuda-python and a CUDA GPU are present")
    providers = available_providers()
    if "TensorrtExecutionProvider" in providers:
        return BackendChoice("ort-trt", "onnxruntime-gpu offers the TensorRT provider")
    if "CUDAExecutionProvider" in providers:
        return BackendChoice("ort-cuda", "onnxruntime-gpu offers the CUDA provider")
    return BackendChoice("ort-cpu", "no GPU provider in onnxruntime; CPU provider")


def create(name: str, model: Path, threads: int = 0) -> Backend:
    """One model on the named backend. Every way the backend itself can fail to start is a
    BackendUnavailable naming the reason; a model it cannot run is a ModelError (both usage
    errors, so callers catch those two and nothing else)."""
    if is_triton(name):
        try:
            target = parse_target(name)
        except ValueError as exc:
            raise BackendUnavailable(str(exc)) from None
        return TritonBackend(target, model)
    found = REGISTRY.get(name)
    if found is not None and found.runs is Runs.CHAIN:
        why = unavailable(name)
        if why:
            raise BackendUnavailable(why)
        raise BackendUnavailable(f"{name} runs whole tile chains on the GPU pipeline, not single "
                                 "models; use --backend ort-trt, ort-cuda or ort-cpu for this step")
    # Any other name goes to onnxruntime, which refuses one it has no provider for as a
    # BackendUnavailable naming the providers it has.
    return OrtBackend(model, name, threads)
