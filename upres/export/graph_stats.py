"""Parameter and FLOP counts read off an ONNX graph (works for any model, no torch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def parameter_count(model: onnx.ModelProto) -> int:
    return int(sum(np.prod(t.dims) for t in model.graph.initializer))


def flops_per_output_pixel(model: onnx.ModelProto, probe_size: int = 64) -> float:
    """Conv/ConvTranspose FLOPs (2 x MACs) per output pixel, from the shapes at a fixed size."""
    shapes = _inferred_shapes(model, probe_size)
    out = shapes.get(model.graph.output[0].name)
    if not out or len(out) != 4 or min(out[2], out[3]) <= 0:
        # Sizes cut from the input's own shape (pad to whole pixel blocks, crop back) defeat
        # static inference: one run at the probe size reads them instead.
        shapes = _run_shapes(model, probe_size)
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0.0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose") or node.input[1] not in weights:
            continue
        out_shape = shapes.get(node.output[0])
        if not out_shape or 0 in out_shape:
            continue
        w = weights[node.input[1]]
        out_pixels = out_shape[2] * out_shape[3]
        if node.op_type == "Conv":
            # Each output value: Cin/groups * kh * kw MACs, for Cout channels.
            total += 2.0 * float(np.prod(w)) * out_pixels
        else:
            strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), [1, 1])
            # Each input pixel scatters a full (Cin, Cout/groups, kh, kw) kernel.
            total += 2.0 * float(np.prod(w)) * out_pixels / float(np.prod(strides))
    out = shapes.get(model.graph.output[0].name)
    out_pixels = out[2] * out[3] if out and len(out) == 4 and min(out[2], out[3]) > 0 else 0
    return total / out_pixels if out_pixels else 0.0


def _fixed_input(model: onnx.ModelProto, probe_size: int) -> onnx.ModelProto:
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for inp in fixed.graph.input:
        dims = inp.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            d.ClearField("dim_param")
            known = d.dim_value if d.dim_value > 0 else 0
            d.dim_value = 1 if i == 0 else (known or 3) if i == 1 else probe_size
    return fixed


def _inferred_shapes(model: onnx.ModelProto, probe_size: int) -> dict[str, list[int]]:
    fixed = _fixed_input(model, probe_size)
    # Stale output shapes (some exporters write -1) would stop inference from filling them in.
    for out in fixed.graph.output:
        out.type.tensor_type.ClearField("shape")
    del fixed.graph.value_info[:]
    inferred = shape_inference.infer_shapes(fixed)
    return {
        vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
        for vi in [*inferred.graph.value_info, *inferred.graph.output]
    }


def _run_shapes(model: onnx.ModelProto, probe_size: int) -> dict[str, list[int]]:
    """The shapes of every conv output and of the graph's output, from one run on zeros."""
    import onnxruntime as ort

    probe = _fixed_input(model, probe_size)
    wanted = [n.output[0] for n in probe.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name)
                              for name in wanted if name not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the nodes
    session = ort.InferenceSession(probe.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    feeds = {}
    constants = {t.name for t in probe.graph.initializer}
    for inp in probe.graph.input:
        if inp.name in constants:
            continue
        dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
        feeds[inp.name] = np.zeros(dims, dtype)
    names = [o.name for o in probe.graph.output]
    values = session.run(names, feeds)
    return {name: list(np.shape(value)) for name, value in zip(names, values, strict=True)}
