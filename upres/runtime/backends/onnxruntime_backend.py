"""ONNX Runtime backends: CPU (always present), CUDA and TensorRT providers (onnxruntime-gpu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from upres.runtime.backends.base import BackendUnavailable

PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-trt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


class OrtBackend:
    """One InferenceSession; input/output bound by the graph's names, dtype adapted to the model."""

    def __init__(self, model: Path | bytes, name: str = "ort-cpu", threads: int = 0) -> None:
        if name not in PROVIDERS:
            raise ValueError(f"unknown ONNX Runtime backend {name!r}; known: {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[name][0]
        if wanted not in available_providers():
            raise BackendUnavailable(
                f"{name}: ONNX Runtime has no {wanted} here (install onnxruntime-gpu and CUDA)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Same bytes for the same input: no nondeterministic kernels, no spinning between tiles.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        src = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(src, opts, providers=PROVIDERS[name])
        self.name = name
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=self.input_dtype)
        out = self.session.run([self.output_name], {self.input_name: x})[0]
        return out.astype(np.float32, copy=False)
