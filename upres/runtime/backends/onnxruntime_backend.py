"""ONNX Runtime backends: CPU (always present), CUDA and TensorRT providers (onnxruntime-gpu)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort

from upres.core.allocator import keep_freed_memory
from upres.core.errors import BackendUnavailable, ModelError

PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


# ONNX Runtime's tensor types as numpy names them, for messages.
_DTYPES = {"float": "float32", "double": "float64"}
_FLOATS = ("tensor(float)", "tensor(float16)")
# An execution provider that fails to start is the backend's fault, not the model's (older ORT
# builds have no such type: then nothing is taken for it).
_EP_FAIL = getattr(ort.capi.onnxruntime_pybind11_state, "EPFail", ())


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def ort_message(exc: BaseException) -> str:
    """ORT's message without its "[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : " prefix, one line."""
    text = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", str(exc).strip())
    return " ".join(text.split()) or type(exc).__name__


def _dtype(ort_type: str) -> str:
    inner = ort_type.removeprefix("tensor(").removesuffix(")")
    return _DTYPES.get(inner, inner)


def _shape(shape: list[object]) -> str:
    return "(" + ", ".join(str(d) if isinstance(d, int) else "?" for d in shape) + ")"


def _channels(shape: list[object] | None) -> int | None:
    return shape[1] if shape and len(shape) == 4 and isinstance(shape[1], int) else None


def check_image_signature(session: ort.InferenceSession, label: str) -> None:
    """Refuse, with the reason, a graph that cannot take one NCHW float image tile of any size and
    give one back: otherwise every image of a batch would fail on it with ORT's message."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs) or "none"
        raise ModelError(f"{label}: takes {len(inputs)} inputs ({names}); upres feeds one image")
    inp = inputs[0]
    if inp.type not in _FLOATS:
        raise ModelError(f"{label}: input is {_dtype(inp.type)}; upres runs float32/float16 image models")
    # ORT reports an unstated shape as (), like a scalar's: only a stated rank is checked, and
    # the first run tells the rest.
    shape = list(inp.shape or [])
    if shape and len(shape) != 4:
        raise ModelError(f"{label}: input has shape {_shape(shape)}; upres feeds NCHW images "
                         "(N, C, H, W)")
    h, w = (d if isinstance(d, int) else None for d in shape[2:]) if shape else (None, None)
    if h is not None and w is not None:
        raise ModelError(f"{label}: expects a fixed {h}x{w} input; upres needs dynamic height/width")
    if h is not None or w is not None:
        which = f"height {h}" if h is not None else f"width {w}"
        raise ModelError(f"{label}: expects a fixed input {which}; upres needs dynamic height/width")
    if shape and isinstance(shape[0], int) and shape[0] != 1:
        raise ModelError(f"{label}: expects a fixed batch of {shape[0]}; upres needs batch 1 or dynamic")
    out = outputs[0]
    if out.type not in _FLOATS:
        raise ModelError(f"{label}: output is {_dtype(out.type)}; upres runs float32/float16 image models")
    if out.shape and len(out.shape) != 4:
        raise ModelError(f"{label}: output has shape {_shape(list(out.shape))}, not an image "
                         "(N, C, H, W); upres runs image-to-image models")


def session_options(threads: int) -> ort.SessionOptions:
    """upres's options for every ONNX Runtime session it makes (image models and others)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Same bytes for the same input: no nondeterministic kernels, no spinning between tiles.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # A memory pattern is planned per input shape, and a batch's images and edge tiles come
    # in many: with it on, each new shape cost a re-plan and fresh buffers (docs/RUNTIME.md).
    opts.enable_mem_pattern = False
    return opts


class OrtBackend:
    """One InferenceSession; input/output bound by the graph's names, dtype adapted to the model."""

    def __init__(self, model: Path | bytes, name: str = "ort-cpu", threads: int = 0) -> None:
        if name not in PROVIDERS:
            raise BackendUnavailable(f"unknown ONNX Runtime backend {name!r}; known: {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[name][0]
        if wanted not in available_providers():
            raise BackendUnavailable(
                f"{name}: ONNX Runtime has no {wanted} here (install onnxruntime-gpu and CUDA)")
        keep_freed_memory()
        opts = session_options(threads)
        src = str(model) if isinstance(model, Path) else model
        label = str(model) if isinstance(model, Path) else "model"
        try:
            self.session = ort.InferenceSession(src, opts, providers=PROVIDERS[name])
        except _EP_FAIL as exc:
            raise BackendUnavailable(f"{name}: {ort_message(exc)}") from None
        except Exception as exc:  # ORT's own exception types derive from Exception alone
            raise ModelError(f"{label}: ONNX Runtime cannot load it ({ort_message(exc)})") from None
        check_image_signature(self.session, label)
        self.name = name
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        # Channel counts the graph states (None where it leaves them open).
        self.input_channels = _channels(inp.shape)
        self.output_channels = _channels(self.session.get_outputs()[0].shape)

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        return out.astype(np.float32, copy=False)
