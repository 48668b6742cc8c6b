"""Pick and create a backend by name; `auto` takes the best one present and says why."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from upres.runtime.backends.base import Backend, BackendChoice, BackendUnavailable
from upres.runtime.backends.onnxruntime_backend import OrtBackend, available_providers

BACKENDS = ("auto", "ort-cpu", "ort-cuda", "ort-trt", "trt")


def choose(name: str) -> BackendChoice:
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name != "auto":
        return BackendChoice(name, "requested")
    providers = available_providers()
    if "TensorrtExecutionProvider" in providers:
        return BackendChoice("ort-trt", "onnxruntime-gpu offers the TensorRT provider")
    if "CUDAExecutionProvider" in providers:
        return BackendChoice("ort-cuda", "onnxruntime-gpu offers the CUDA provider")
    return BackendChoice("ort-cpu", "no GPU provider in onnxruntime; CPU provider")


def create(name: str, model: Path, threads: int = 0) -> Backend:
    if name == "trt":
        if importlib.util.find_spec("tensorrt") is None:
            raise BackendUnavailable("trt: the tensorrt package is not installed (pip install "
                                     "'upres[gpu]' on a machine with an NVIDIA GPU)")
        raise BackendUnavailable("trt: native TensorRT engines are not supported in this release")
    return OrtBackend(model, name, threads)
