"""PyTorch -> ONNX export with checker, parity against PyTorch, receptive-field probe and metadata."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from upres.core.atomic import atomic_output
from upres.core.hashing import file_sha256
from upres.core.model import ModelInfo, write_props
from upres.core.receptive_field import probe_alignment, probe_receptive_field
from upres.core.version import __version__
from upres.export.graph_stats import flops_per_output_pixel, parameter_count
from upres.models.registry import spec
from upres.models.train import load_state

OPSET = 17
PARITY_TOLERANCE = 1e-4
PARITY_SIZES = ((17, 23), (32, 32), (41, 9))


@dataclass(frozen=True)
class ExportReport:
    path: Path
    info: ModelInfo
    parity_max_abs: float


def _session(model_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def _to_onnx(model: torch.nn.Module, channels: int) -> onnx.ModelProto:
    buf = io.BytesIO()
    dummy = torch.rand(1, channels, 24, 24)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of dynamo; it still exports these
        # plain conv nets exactly and without onnxscript, so keep it until the default changes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), buf,  # type: ignore[arg-type]  # a file object is taken
            opset_version=OPSET, input_names=["input"],
            output_names=["output"], dynamo=False,
            dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                          "output": {0: "batch", 2: "out_height", 3: "out_width"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto


def parity(model: torch.nn.Module, session: ort.InferenceSession, inputs: list[np.ndarray]) -> float:
    """Max abs difference between PyTorch and ONNX Runtime over `inputs`."""
    worst = 0.0
    with torch.no_grad():
        for x in inputs:
            ref = model(torch.from_numpy(x)).numpy()
            got = session.run(None, {"input": x})[0]
            worst = max(worst, float(np.max(np.abs(ref - got))))
    return worst


def export_weights(weights: Path, out: Path, real_images: list[np.ndarray] | None = None) -> ExportReport:
    """Export a trained weights file to `out` (ONNX with upres metadata); raises on failed parity."""
    name, state = load_state(weights)
    model_spec = spec(name)
    model = model_spec.build()
    model.load_state_dict(state)
    model.eval()
    channels = 4 if model_spec.kind in ("refine", "fill") else 3
    proto = _to_onnx(model, channels)
    session = _session(proto.SerializeToString())

    rng = np.random.default_rng(0)
    inputs = [rng.random((1, channels, h, w), dtype=np.float32) for h, w in PARITY_SIZES]
    for img in real_images or []:
        x = img.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        if channels == 4:
            x = np.concatenate([x, x[:, :1]], axis=1)
        inputs.append(np.ascontiguousarray(x))
    worst = parity(model, session, inputs)
    if worst >= PARITY_TOLERANCE:
        raise RuntimeError(f"{out}: ONNX Runtime differs from PyTorch by {worst:.2e} "
                           f"(limit {PARITY_TOLERANCE:.0e})")

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {"input": x})[0]

    reach = probe_receptive_field(run, channels, model_spec.scale)
    info = ModelInfo(
        name=name,
        kind=model_spec.kind,
        scale=model_spec.scale,
        receptive_field=reach,
        input_channels=channels,
        output_channels=int(run(inputs[0]).shape[1]),  # 3 for images, 1 for the detector's logits
        parameters=parameter_count(proto),
        flops_per_pixel=round(flops_per_output_pixel(proto), 1),
        weights_sha256=file_sha256(weights),
        alignment=probe_alignment(run, channels, model_spec.scale, reach),
    )
    write_props(proto, {**info.to_props(), "upres.version": __version__})
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        onnx.save(proto, str(tmp))
    return ExportReport(out, info, worst)
