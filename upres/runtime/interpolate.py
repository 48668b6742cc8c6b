"""Network interpolation: a model whose weights lie between a clean model's and its restoration twin's.

The restoration models are the clean coarse models fine-tuned on degraded scans, so the two share
every tensor name and shape and the straight line between their weights is a family of models
from "keep everything" (0) to "remove the damage" (1) (ESRGAN's network interpolation). The file
for a strength is made once with numpy over the ONNX initializers, written to the user cache and
then read like any model: the ONNX package is needed only to make it.

INT8 (Q/DQ) graphs are interpolated in real values: each weight and bias is dequantised in both
graphs, interpolated, and quantised again with its own new scale (symmetric per channel over the
integer range the calibration used; a bias's scale stays the product of its input's and its
weight's scales, which the integer convolution assumes); activation scales and zero points,
measured on images, are interpolated between the two calibrations.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from upres.core.cache import cached_model_file
from upres.core.errors import ModelError
from upres.core.model import PREFIX

if TYPE_CHECKING:
    import onnx

# Strengths are made on this grid: a handful of cached files per model, and a strength that is
# reproducible from its printed value.
STEP = 0.1
FORMAT = 1  # bump when interpolation changes what it writes


def snap(strength: float) -> float:
    """``strength`` on the interpolation grid (0, 0.1, ..., 1)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"denoise strength must be within 0..1, got {strength}")
    return round(round(strength / STEP) * STEP, 2)


def interpolated_path(clean: Path, clean_sha: str, restore: Path, restore_sha: str,
                      strength: float) -> Path:
    """The ONNX file of ``clean`` moved ``strength`` of the way to ``restore`` (made on first use)."""
    key = hashlib.sha256(f"{clean_sha}:{restore_sha}:{strength:.2f}:{FORMAT}".encode()).hexdigest()
    name = f"{clean.stem}-denoise{strength:.1f}-{key[:16]}.onnx"
    return cached_model_file("denoise", name, lambda: interpolate(clean, restore, strength))


def interpolate(clean: Path, restore: Path, strength: float) -> bytes:
    """The serialised ONNX model between ``clean`` (0) and ``restore`` (1)."""
    import onnx

    a, b = onnx.load(str(clean)), onnx.load(str(restore))
    ours = {t.name: t for t in a.graph.initializer}
    theirs = {t.name: t for t in b.graph.initializer}
    if ours.keys() != theirs.keys():
        raise ModelError(f"{restore.name} is not {clean.name}'s restoration twin: their weights differ "
                         "in names, so the two cannot be interpolated")
    values = {n: _array(t) for n, t in ours.items()}
    others = {n: _array(t) for n, t in theirs.items()}
    for name, value in values.items():
        if value.shape != others[name].shape or value.dtype != others[name].dtype:
            raise ModelError(f"{clean.name} and {restore.name} differ in {name}: cannot interpolate")
    mixed = _mix_quantized(a, values, others, strength)
    for name, value in values.items():
        if name in mixed:
            continue
        if value.dtype.kind == "f":
            mixed[name] = ((1.0 - strength) * value + strength * others[name]).astype(value.dtype)
        elif np.array_equal(value, others[name]):
            mixed[name] = value
        else:  # activation zero points: the calibrated ranges' offsets, interpolated
            mixed[name] = np.rint((1.0 - strength) * value + strength * others[name]).astype(value.dtype)
    from onnx import numpy_helper

    for tensor in a.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(mixed[tensor.name], tensor.name))
    for prop in a.metadata_props:
        if prop.key == PREFIX + "name":
            prop.value = f"{prop.value}+denoise{strength:.1f}"
    return a.SerializeToString()


def _array(tensor: onnx.TensorProto) -> np.ndarray:
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


def _dq_inputs(model: onnx.ModelProto) -> dict[str, tuple[list[str], int]]:
    """DequantizeLinear's output name -> (its inputs: quantised, scale, zero point; its axis)."""
    found = {}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear":
            axis = next((attr.i for attr in node.attribute if attr.name == "axis"), 1)
            found[node.output[0]] = (list(node.input), axis)
    return found


def _per_channel(scale: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    if scale.ndim == 0:
        return scale
    shape = [1] * ndim
    shape[axis] = -1
    return scale.reshape(shape)


def _dequantize(values: dict[str, np.ndarray], inputs: list[str], axis: int) -> np.ndarray:
    q = values[inputs[0]]
    scale = _per_channel(values[inputs[1]], q.ndim, axis)
    zero = _per_channel(values[inputs[2]], q.ndim, axis) if len(inputs) > 2 else 0
    return (q.astype(np.float64) - zero) * scale


def _mix_quantized(model: onnx.ModelProto, ours: dict[str, np.ndarray],
                   theirs: dict[str, np.ndarray], s: float) -> dict[str, np.ndarray]:
    """Requantised weights and biases (and their scales) of every quantised convolution."""
    dq = _dq_inputs(model)
    mixed: dict[str, np.ndarray] = {}

    def scale_of(name: str) -> np.ndarray:
        return ((1.0 - s) * ours[name] + s * theirs[name]).astype(ours[name].dtype)

    for node in model.graph.node:
        if node.op_type != "Conv" or node.input[1] not in dq:
            continue
        w_inputs, w_axis = dq[node.input[1]]
        if w_inputs[0] not in ours or ours[w_inputs[0]].dtype != np.int8:
            continue
        if len(w_inputs) > 2 and (ours[w_inputs[2]].any() or theirs[w_inputs[2]].any()):
            raise ModelError("an INT8 weight with a non-zero zero point cannot be interpolated")
        weight = (1.0 - s) * _dequantize(ours, w_inputs, w_axis) + s * _dequantize(theirs, w_inputs, w_axis)
        reduce = tuple(i for i in range(weight.ndim) if i != w_axis)
        # The calibration's integer range, kept: 7 bits (reduce_range, for CPUs without VNNI,
        # whose 16-bit accumulation would saturate) or 8.
        top = max(int(np.abs(ours[w_inputs[0]]).max()), int(np.abs(theirs[w_inputs[0]]).max()))
        qmax = 64 if top <= 64 else 127
        w_scale = (np.abs(weight).max(axis=reduce) / qmax).astype(ours[w_inputs[1]].dtype)
        w_scale = np.where(w_scale > 0, w_scale, np.finfo(np.float32).tiny).astype(w_scale.dtype)
        q = np.rint(weight / _per_channel(w_scale.astype(np.float64), weight.ndim, w_axis))
        mixed[w_inputs[0]] = np.clip(q, -qmax, qmax).astype(np.int8)
        mixed[w_inputs[1]] = w_scale
        if len(node.input) < 3 or node.input[2] not in dq or node.input[0] not in dq:
            continue
        b_inputs, b_axis = dq[node.input[2]]
        x_scale = scale_of(dq[node.input[0]][0][1])
        bias = (1.0 - s) * _dequantize(ours, b_inputs, b_axis) + s * _dequantize(theirs, b_inputs, b_axis)
        b_scale = (x_scale.astype(np.float64) * w_scale.astype(np.float64))
        mixed[b_inputs[0]] = np.rint(bias / b_scale).astype(ours[b_inputs[0]].dtype)
        mixed[b_inputs[1]] = b_scale.astype(ours[b_inputs[1]].dtype)
    return mixed
