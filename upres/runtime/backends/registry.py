"""Every backend upres can run on, as frozen specs: what it needs, where it runs, how it is made.

Code that must treat backends differently asks a spec (`spec(name).runs`, `.device`) instead of
comparing names. The GPU pipeline backends live in upres.gpu, a layer below the runtime: their
spec names its entry points as ``"module:function"`` data, resolved (imported) only when that
backend is picked. So the runtime never imports upres.gpu, and `upres run` on the CPU loads no
CUDA code at all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DeviceKind(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    REMOTE = "remote"  # a Triton server: the device is someone else's


class Runs(StrEnum):
    """What one backend instance runs."""

    MODEL = "model"  # one ONNX model; the runtime's chains call it per tile
    CHAIN = "chain"  # a whole tile chain (models and kernels) on upres.gpu's CUDA-stream pipeline


@dataclass(frozen=True)
class BackendSpec:
    """name: the --backend value. device: where its tiles run. runs: see Runs.
    needs: what must be installed for it, in words (for messages and docs).
    open: ``"module:function"`` that makes it: for Runs.MODEL ``f(model_path, name, threads)`` ->
        Backend; for Runs.CHAIN ``f(name, coarse, refine, texture, precision, memory, streams)`` ->
        TileChain.
    unavailable: ``"module:function"`` ``f(name) -> str | None``: why it cannot run here; None for
        backends that find out when they are opened.
    onnx_precision: False where the backend runs the fp32 weights whatever --precision says
        (torch-cuda casts them itself), True where it loads the ONNX graph of that precision.
    """

    name: str
    device: DeviceKind
    runs: Runs
    needs: str
    open: str
    unavailable: str | None = None
    onnx_precision: bool = True

    def opener(self) -> Callable[..., Any]:
        return _resolve(self.open)

    def why_unavailable(self) -> str | None:
        return None if self.unavailable is None else _resolve(self.unavailable)(self.name)


def _resolve(ref: str) -> Callable[..., Any]:
    module, _, attribute = ref.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return found


_ORT = "upres.runtime.backends.onnxruntime_backend:OrtBackend"
_GPU_OPEN = "upres.gpu.open_chain:open_gpu_chain"
_GPU_MISSING = "upres.gpu.open_chain:pipeline_unavailable"

SPECS: tuple[BackendSpec, ...] = (
    BackendSpec("ort-cpu", DeviceKind.CPU, Runs.MODEL, "onnxruntime", _ORT),
    BackendSpec("ort-cuda", DeviceKind.CUDA, Runs.MODEL, "onnxruntime-gpu (CUDA provider)", _ORT),
    BackendSpec("ort-trt", DeviceKind.CUDA, Runs.MODEL, "onnxruntime-gpu (TensorRT provider)", _ORT),
    BackendSpec("trt", DeviceKind.CUDA, Runs.CHAIN, "TensorRT, cuda-python, NVRTC and a CUDA GPU",
                _GPU_OPEN, _GPU_MISSING),
    BackendSpec("torch-cuda", DeviceKind.CUDA, Runs.CHAIN, "PyTorch with CUDA, cuda-python, NVRTC",
                _GPU_OPEN, _GPU_MISSING, onnx_precision=False),
)
REGISTRY: dict[str, BackendSpec] = {s.name: s for s in SPECS}
# The Triton client backend is addressed by URL (triton://HOST:PORT[/MODEL]), not by one name.
TRITON = BackendSpec("triton", DeviceKind.REMOTE, Runs.MODEL, "tritonclient[grpc] and a server",
                     "upres.runtime.backends.triton_backend:TritonBackend")


def spec(name: str) -> BackendSpec:
    """The spec of a concrete backend name or triton:// URL (not "auto": see select.choose)."""
    if name.startswith("triton://"):
        return TRITON
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; one of {', '.join(REGISTRY)}") from None
