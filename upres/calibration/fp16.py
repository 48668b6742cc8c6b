"""FP16: a mixed-precision model with float32 I/O, ops whose values leave FP16's range kept in FP32.

Ranges are measured, not guessed: calibration crops run through the FP32 model with every float
intermediate tensor exposed as an output. A tensor whose magnitude nears FP16's maximum (65504)
would overflow to inf; one whose nonzero values are mostly below FP16's smallest normal (6.1e-5)
would lose its precision. Both its producer and its consumers stay FP32, so neither side casts it.
The conversion itself is onnxconverter-common's `convert_float_to_float16` (keep_io_types, a node
block list); FP16 models are meant for TensorRT/CUDA: ONNX Runtime's CPU provider has few FP16
kernels and runs them slower than FP32.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from upres.calibration.accuracy import backend, compare, cpu_facts, measure_speed, run_crops
from upres.calibration.images import CalibrationError, as_folders
from upres.calibration.int8 import prepare_data
from upres.calibration.model import output_info
from upres.calibration.reader import Feed, ProgressFactory, TileCropReader, no_progress
from upres.calibration.report import CalibrationReport, kept_props
from upres.core.atomic import atomic_output
from upres.core.model import write_props

FP16_MAX = 65504.0
FP16_MIN_NORMAL = 6.103515625e-05
SAFE_ABS = 60000.0  # margin below FP16_MAX: unseen images may reach a little further
MAX_SUBNORMAL_FRACTION = 0.5


@dataclass(frozen=True)
class TensorRange:
    name: str
    producer: str
    abs_max: float
    subnormal_fraction: float  # of nonzero values, those below FP16's smallest normal

    def unsafe(self, safe_abs: float = SAFE_ABS, max_subnormal: float = MAX_SUBNORMAL_FRACTION) -> bool:
        return self.abs_max > safe_abs or self.subnormal_fraction > max_subnormal


def _float_tensors(model: onnx.ModelProto) -> dict[str, str]:
    """Float32 tensors produced by nodes -> producing node name."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*inferred.graph.value_info, *inferred.graph.output]}
    return {out: node.name for node in model.graph.node for out in node.output
            if types.get(out) == onnx.TensorProto.FLOAT}


def tensor_ranges(model: onnx.ModelProto, feeds: Iterable[Feed]) -> list[TensorRange]:
    """Max |x| and subnormal share of every float intermediate tensor over the feeds."""
    tensors = _float_tensors(model)
    augmented = onnx.ModelProto()
    augmented.CopyFrom(model)
    existing = {o.name for o in augmented.graph.output}
    for name in tensors:
        if name not in existing:
            info = onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            augmented.graph.output.append(info)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # No graph optimizations: fused nodes would hide the tensors being measured.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(augmented.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    abs_max = dict.fromkeys(names, 0.0)
    small = dict.fromkeys(names, 0)
    nonzero = dict.fromkeys(names, 0)
    for feed in feeds:
        for name, value in zip(names, sess.run(None, feed), strict=True):
            a = np.abs(value)
            abs_max[name] = max(abs_max[name], float(a.max()) if a.size else 0.0)
            nz = a[a > 0]
            nonzero[name] += nz.size
            small[name] += int(np.count_nonzero(nz < FP16_MIN_NORMAL))
    return [TensorRange(n, tensors.get(n, ""), abs_max[n], small[n] / nonzero[n] if nonzero[n] else 0.0)
            for n in names if n in tensors]


def blocked_nodes(model: onnx.ModelProto, ranges: Sequence[TensorRange],
                  safe_abs: float = SAFE_ABS, max_subnormal: float = MAX_SUBNORMAL_FRACTION) -> list[str]:
    """Producers and consumers of every unsafe tensor, in graph order."""
    unsafe = {r.name for r in ranges if r.unsafe(safe_abs, max_subnormal)}
    return [n.name for n in model.graph.node
            if any(o in unsafe for o in n.output) or any(i in unsafe for i in n.input)]


def convert(model: onnx.ModelProto, block: Sequence[str]) -> onnx.ModelProto:
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise CalibrationError("FP16 conversion needs the onnxconverter-common package "
                               "(pip install onnxconverter-common)") from None
    # max_finite_val: weights beyond it are clamped; FP16's own limit, not the converter's 1e4 default.
    return float16.convert_float_to_float16(model, keep_io_types=True, node_block_list=list(block),
                                            max_finite_val=FP16_MAX)


def calibrate_fp16(
    model_path: Path | str,
    images_dir: Path | str | Sequence[Path | str],
    out_path: Path | str,
    samples: int = 64,
    seed: int = 0,
    max_loss_db: float = 0.3,
    *,
    heldout_fraction: float = 0.2,
    heldout_count: int = 48,
    speed_runs: int = 5,
    speed_size: int = 256,
    safe_abs: float = SAFE_ABS,
    progress: ProgressFactory = no_progress,
) -> CalibrationReport:
    """Write a mixed FP16/FP32 model (float32 I/O) to `out_path`, its report to OUT.json.
    progress: how the range measurement shows its progress (default: not at all)."""
    out_path = Path(out_path)
    data = prepare_data(Path(model_path), as_folders(images_dir), heldout_fraction, heldout_count, seed)
    spec = data.spec
    fp32 = onnx.load(str(spec.path))
    with progress(samples, "measuring ranges") as advance:
        reader = TileCropReader(data.calibration, spec, samples, seed, on_sample=advance)
        ranges = tensor_ranges(fp32, reader)
    block = blocked_nodes(fp32, ranges, safe_abs)
    model = convert(fp32, block)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="upres-fp16.") as tmp_dir:
        staged = Path(tmp_dir) / "fp16.onnx"
        onnx.save(model, str(staged))
        reference = run_crops(backend(spec.path), data.crops)
        accuracy = compare(data.crops, reference, run_crops(backend(staged), data.crops))
        speed = measure_speed({"fp32": spec.path, "fp16": staged}, spec.scale, spec.channels,
                              size=speed_size, runs=speed_runs) if speed_runs > 0 else None
        worst = max(ranges, key=lambda r: r.abs_max)
        report = CalibrationReport(
            precision="fp16", model=str(spec.path), model_sha256=spec.sha256, output=str(out_path),
            method="ranges", samples=samples, seed=seed, calibration_images=len(data.calibration),
            calibration_sha256=data.calibration.sha256, heldout_images=len(data.heldout),
            heldout_sha256=data.heldout.sha256, exclude_mode="ranges", excluded_nodes=block,
            max_loss_db=max_loss_db, accuracy=accuracy, speed=speed,
            settings={"safe_abs": safe_abs, "max_subnormal_fraction": MAX_SUBNORMAL_FRACTION,
                      "keep_io_types": True, "onnxruntime": ort.__version__},
            notes=[f"largest |x|: {worst.abs_max:.4g} at {worst.name} ({len(ranges)} tensors measured)",
                   "ONNX Runtime's CPU provider has few FP16 kernels: this model is for TensorRT/CUDA; "
                   "on ort-cpu run the FP32 model"], machine=cpu_facts())
        write_props(model, {**kept_props(fp32), **output_info(spec, "fp16").to_props(), **report.to_props()})
        onnx.save(model, str(staged))
        # Copied under a temporary name beside the output and renamed: shutil.move across
        # filesystems copies in place, so a crash could leave half a model under the final name.
        with atomic_output(out_path) as target:
            shutil.copyfile(staged, target)
    report.write_json()
    return report
