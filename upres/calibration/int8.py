"""INT8: a Q/DQ ONNX model from real calibration crops, with the accuracy it costs measured.

Format choices (measured on this project's CPUs, see docs/PRECISION.md):
- QDQ with uint8 activations and int8 per-channel weights: ONNX Runtime fuses DQ -> Conv(+ReLU) -> Q
  into QLinearConv (u8s8 kernels, VNNI where the CPU has it). int8 activations (s8s8) are not fused
  the same way on x86 and ran slower than FP32 here.
- reduce_range (7-bit weights): without AVX-512 VNNI, x86 u8s8 kernels use VPMADDUBSW, whose int16
  sums saturate; 7-bit weights cannot saturate. It costs little on VNNI machines and keeps one
  shipped file accurate on every x86 CPU.
- The input is quantized with scale 1/255 and zero point 0: LR pixels are k/255, so that is exact.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    create_calibrator,
    quantize_static,
    save_tensors_data,
)

from upres.calibration.accuracy import Accuracy, backend, compare, cpu_facts, measure_speed, run_crops
from upres.calibration.images import CalibrationError, ImageSet, as_folders, find_images, split_holdout
from upres.calibration.model import ModelSpec, inspect_model, output_info
from upres.calibration.reader import (
    EvalCrop,
    ProgressFactory,
    TileCropReader,
    heldout_crops,
    no_progress,
)
from upres.calibration.report import CalibrationReport, LayerCost, kept_props
from upres.calibration.sensitivity import (
    choose_exclusions,
    image_path_nodes,
    layer_costs,
    node_names,
    weighted_nodes,
)
from upres.core.atomic import atomic_output
from upres.core.model import write_props

METHODS: dict[str, CalibrationMethod] = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
QUANT_TYPES = {"quint8": QuantType.QUInt8, "qint8": QuantType.QInt8}

Exclude = Literal["auto"] | Sequence[str] | None


@dataclass(frozen=True)
class QdqSettings:
    activation_type: str = "quint8"
    weight_type: str = "qint8"
    per_channel: bool = True
    reduce_range: bool = True
    # Histogram methods hold every activation of a chunk in memory, stacked into one array: crops of
    # different sizes cannot share a chunk, so they go one at a time (histograms merge across calls).
    histogram_chunk: int = 1
    num_bins: int = 512  # entropy/percentile; ORT's entropy default of 128 bins equals MinMax here
    percentile: float = 99.999


@dataclass(frozen=True)
class CalibrationData:
    """Everything drawn from the image folders: the split, the calibration reader, held-out crops."""

    spec: ModelSpec
    calibration: ImageSet
    heldout: ImageSet
    crops: list[EvalCrop]


def prepare_data(model_path: Path, images: Path | Sequence[Path], heldout_fraction: float,
                 heldout_count: int, seed: int) -> CalibrationData:
    spec = inspect_model(Path(model_path))
    calibration, heldout = split_holdout(find_images(images), heldout_fraction, seed)
    # A different stream from the calibration crops' (seed), so no crop pattern repeats.
    crops = heldout_crops(heldout, spec, heldout_count, seed + 1)
    return CalibrationData(spec, calibration, heldout, crops)


def collect_ranges(spec: ModelSpec, calibration: ImageSet, samples: int, seed: int, method: str,
                   cache: Path, settings: QdqSettings,
                   progress: ProgressFactory = no_progress) -> None:
    """Run the calibration crops through an augmented FP32 model and save the tensor ranges where
    `quantize_static(calibration_cache_path=...)` reads them: calibrate once, quantize many times."""
    extra: dict[str, object] = {"num_bins": settings.num_bins, "percentile": settings.percentile}
    with tempfile.TemporaryDirectory(prefix="upres-calib.") as tmp, \
            progress(samples, f"calibrating ({method})") as advance:
        reader = TileCropReader(calibration, spec, samples, seed, on_sample=advance)
        calibrator = create_calibrator(
            spec.path, None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=METHODS[method], extra_options=extra, providers=["CPUExecutionProvider"])
        # Crops wait in memory until their chunk is run; MinMax merges its ranges after each chunk.
        chunk = 32 if method == "minmax" else settings.histogram_chunk
        while not reader.exhausted:
            # ORT's histogram collector prints a line per call to stdout; the progress bar says more.
            with contextlib.redirect_stdout(io.StringIO()):
                calibrator.collect_data(reader.chunk(chunk))
        with contextlib.redirect_stdout(io.StringIO()):
            ranges = calibrator.compute_data()
        save_tensors_data(ranges, cache)


def _overrides(spec: ModelSpec, settings: QdqSettings) -> dict[str, object]:
    if spec.info.value_range != "0,1" or settings.activation_type != "quint8":
        return {}
    exact = {"scale": np.array(1.0 / 255.0, np.float32), "zero_point": np.array(0, np.uint8)}
    return {"TensorQuantOverrides": {spec.input_name: [exact]}}


def quantize_qdq(spec: ModelSpec, out: Path, cache: Path, method: str, settings: QdqSettings,
                 exclude: Sequence[str] = (), only: Sequence[str] | None = None) -> None:
    """Q/DQ model from cached ranges; `exclude` nodes stay float, `only` (if given) limits quantization."""
    with _quiet_root_logger():
        quantize_static(
            str(spec.path), str(out), None, quant_format=QuantFormat.QDQ, per_channel=settings.per_channel,
            reduce_range=settings.reduce_range, activation_type=QUANT_TYPES[settings.activation_type],
            weight_type=QUANT_TYPES[settings.weight_type], nodes_to_quantize=list(only) if only else None,
            nodes_to_exclude=list(exclude), calibrate_method=METHODS[method],
            extra_options=_overrides(spec, settings), calibration_cache_path=str(cache))


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """quantize_static logs "consider pre-processing" on the root logger at every call; the graph is
    already what the exporter made (shape-inferred, no dynamic control flow), so that is noise."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _check_exclude(model: onnx.ModelProto, names: Sequence[str], path: Path) -> None:
    unknown = [n for n in names if n not in node_names(model)]
    if unknown:
        known = ", ".join(n.name for n in weighted_nodes(model))
        raise CalibrationError(f"--exclude: no node named {', '.join(map(repr, unknown))} in {path}; "
                               f"weighted nodes: {known}")


def calibrate_int8(
    model_path: Path | str,
    images_dir: Path | str | Sequence[Path | str],
    out_path: Path | str,
    samples: int = 256,
    method: str = "minmax",
    exclude: Exclude = "auto",
    max_loss_db: float = 0.3,
    seed: int = 0,
    *,
    heldout_fraction: float = 0.2,
    heldout_count: int = 48,
    speed_runs: int = 7,
    speed_size: int = 256,
    settings: QdqSettings | None = None,
    progress: ProgressFactory = no_progress,
) -> CalibrationReport:
    """Write a Q/DQ INT8 model to `out_path`, its report to OUT.json, and return the report.

    exclude: "auto" keeps the image path in float and then the most sensitive layers until the
    held-out loss against the truth is at most `max_loss_db`; a list keeps exactly those nodes in
    float; None quantizes everything ORT can. speed_runs=0 skips the timing (speed is None).
    progress: how each long step shows its progress (default: not at all).
    """
    settings = settings or QdqSettings()
    if method not in METHODS:
        raise CalibrationError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if settings.activation_type not in QUANT_TYPES or settings.weight_type not in QUANT_TYPES:
        raise CalibrationError(f"quantization types must be among {', '.join(QUANT_TYPES)}")
    if method == "entropy" and settings.num_bins < 256:
        # ORT's KL search runs over thresholds from 128 quantized bins up to num_bins.
        raise CalibrationError(f"entropy calibration needs num_bins >= 256, got {settings.num_bins}")
    out_path = Path(out_path)
    data = prepare_data(Path(model_path), as_folders(images_dir), heldout_fraction, heldout_count, seed)
    spec = data.spec
    fp32 = onnx.load(str(spec.path))
    manual = [] if exclude is None or exclude == "auto" else list(exclude)
    _check_exclude(fp32, manual, spec.path)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    reference = run_crops(backend(spec.path), data.crops)
    with tempfile.TemporaryDirectory(prefix="upres-int8.") as tmp_dir:
        tmp = Path(tmp_dir)
        cache = tmp / "ranges.json"
        collect_ranges(spec, data.calibration, samples, seed, method, cache, settings, progress)
        counter = iter(range(1 << 30))

        def build(exclude_nodes: Sequence[str], only: Sequence[str] | None = None) -> Path:
            path = tmp / f"candidate-{next(counter)}.onnx"
            quantize_qdq(spec, path, cache, method, settings, exclude_nodes, only)
            return path

        def score(path: Path) -> Accuracy:
            return compare(data.crops, reference, run_crops(backend(path), data.crops))

        sensitivity: list[LayerCost] = []
        steps: list[dict[str, object]] = []
        if exclude == "auto":
            base = image_path_nodes(fp32)
            final = build(base)
            first = score(final)
            excluded, accuracy = base, first
            if first.loss_db > max_loss_db:
                candidates = [n for n in weighted_nodes(fp32) if n.name not in base]
                with progress(len(candidates), "sensitivity") as advance:
                    sensitivity = layer_costs(candidates, lambda only: score(build(base, only)), advance)
                excluded, accuracy, steps = choose_exclusions(
                    sensitivity, base, lambda ex: score(build(ex)), max_loss_db, first)
                final = build(excluded)
        else:
            excluded = manual
            final = build(excluded)
            accuracy = score(final)
        speed = measure_speed({"fp32": spec.path, "int8": final}, spec.scale, spec.channels,
                              size=speed_size, runs=speed_runs) if speed_runs > 0 else None
        report = CalibrationReport(
            precision="int8", model=str(spec.path), model_sha256=spec.sha256, output=str(out_path),
            method=method, samples=samples, seed=seed,
            calibration_images=len(data.calibration), calibration_sha256=data.calibration.sha256,
            heldout_images=len(data.heldout), heldout_sha256=data.heldout.sha256,
            exclude_mode="auto" if exclude == "auto" else ("manual" if manual else "none"),
            excluded_nodes=list(excluded), max_loss_db=max_loss_db, accuracy=accuracy, speed=speed,
            settings={**asdict(settings), "format": "QDQ", "onnxruntime": ort.__version__,
                      "input_exact_1_255": bool(_overrides(spec, settings))},
            sensitivity=sensitivity, notes=_notes(spec, steps), machine=cpu_facts())
        model = onnx.load(str(final))
        write_props(model, {**kept_props(fp32), **output_info(spec, "int8").to_props(), **report.to_props()})
        onnx.checker.check_model(model)
        staged = tmp / "final.onnx"
        onnx.save(model, str(staged))
        # Copied under a temporary name beside the output and renamed: shutil.move across
        # filesystems copies in place, so a crash could leave half a model under the final name.
        with atomic_output(out_path) as target:
            shutil.copyfile(staged, target)
    report.write_json()
    return report


def _notes(spec: ModelSpec, steps: list[dict[str, object]]) -> list[str]:
    notes = []
    if spec.probed:
        notes.append("model had no upres metadata: scale and receptive field were probed")
    if steps:
        notes.append("exclusion search: " + json.dumps(steps))
    return notes
