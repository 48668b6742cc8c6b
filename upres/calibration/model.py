"""What calibration needs to know about the model to quantize: I/O names, channels, scale, halo."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from upres.calibration.images import CalibrationError
from upres.core.hashing import file_sha256
from upres.core.model import ModelInfo
from upres.core.receptive_field import probe_receptive_field, probe_scale
from upres.export.graph_stats import flops_per_output_pixel, parameter_count


@dataclass(frozen=True)
class ModelSpec:
    path: Path
    sha256: str
    input_name: str
    output_name: str
    info: ModelInfo  # from upres metadata, or probed for a model without it
    probed: bool  # True when the model carried no upres metadata

    @property
    def channels(self) -> int:
        return self.info.input_channels

    @property
    def scale(self) -> int:
        return self.info.scale

    @property
    def halo(self) -> int:
        return self.info.receptive_field


def load_onnx(path: Path) -> onnx.ModelProto:
    """Load and check an ONNX file; any other file is a CalibrationError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    if not path.is_file():
        raise CalibrationError(f"model {path} is not a file")
    try:
        model = onnx.load(str(path))
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise CalibrationError(f"{path} is not an ONNX model ({type(exc).__name__}: {exc})") from None
    # Protobuf parses some arbitrary bytes as an empty message, so an empty graph also means "not ONNX".
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise CalibrationError(f"{path} is not an ONNX model (no graph, inputs or outputs)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise CalibrationError(f"{path}: invalid ONNX model: {str(exc).splitlines()[0]}") from None
    return model


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def inspect_model(path: Path) -> ModelSpec:
    """ModelSpec from upres metadata; a model without it is probed (channels from the input shape,
    scale and receptive field by running it), as the runtime's catalog does for foreign models."""
    path = Path(path)
    model = load_onnx(path)
    graph_inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(graph_inputs) != 1 or len(model.graph.output) != 1:
        raise CalibrationError(f"{path}: expected one image input and one output, got "
                               f"{len(graph_inputs)} inputs and {len(model.graph.output)} outputs")
    inp, out = graph_inputs[0], model.graph.output[0]
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise CalibrationError(f"{path}: input {inp.name!r} is not float32; calibrate the FP32 model")
    dims = inp.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise CalibrationError(f"{path}: input {inp.name!r} is not NCHW (rank {len(dims)})")
    props = {p.key: p.value for p in model.metadata_props}
    info = ModelInfo.from_props(props)
    sha = file_sha256(path)
    if info is not None:
        if info.precision != "fp32":
            raise CalibrationError(f"{path} is already {info.precision}; calibrate the FP32 model")
        return ModelSpec(path, sha, inp.name, out.name, info, probed=False)
    channels = dims[1].dim_value if dims[1].HasField("dim_value") else 3
    sess = _session(path)

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {inp.name: x})[0]

    try:
        scale = probe_scale(run, channels)
        rf = probe_receptive_field(run, channels, scale, size=64, trials=2)
    except (ValueError, RuntimeError) as exc:
        raise CalibrationError(f"{path}: cannot probe scale/receptive field: {exc}") from None
    probed = ModelInfo(name=path.stem, kind="foreign", scale=scale, receptive_field=rf,
                       input_channels=channels, parameters=parameter_count(model),
                       flops_per_pixel=round(flops_per_output_pixel(model), 1), weights_sha256=sha)
    return ModelSpec(path, sha, inp.name, out.name, probed, probed=True)


def output_info(spec: ModelSpec, precision: str) -> ModelInfo:
    return replace(spec.info, precision=precision, io_dtype="float32")
