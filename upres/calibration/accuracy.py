"""Accuracy and speed of a converted model against its FP32 original, on held-out crops."""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from upres.calibration.reader import EvalCrop
from upres.metrics import psnr, y_channel
from upres.runtime.backends.onnxruntime_backend import OrtBackend

# PSNR of identical images is infinite; JSON has no infinity, and nothing above this matters.
PSNR_CAP = 100.0


def backend(model: Path | bytes, threads: int = 0) -> OrtBackend:
    """The runtime's own ORT CPU backend (same session options as `upres run`)."""
    return OrtBackend(model, "ort-cpu", threads)


def run_crops(model: OrtBackend, crops: Sequence[EvalCrop]) -> list[np.ndarray]:
    return [model.run(c.lr) for c in crops]


@dataclass(frozen=True)
class Accuracy:
    """Y-PSNR on held-out crop cores (uint8-rounded like written images) and raw float errors.

    psnr_fp32_hr / psnr_hr: mean per-crop PSNR of the FP32 / converted model against the HR truth.
    psnr_vs_fp32: PSNR of the converted model against the FP32 output (pooled over all crops).
    max_abs / mean_abs: absolute error of the float outputs against FP32, before rounding.
    """

    psnr_fp32_hr: float
    psnr_hr: float
    psnr_vs_fp32: float
    max_abs: float
    mean_abs: float
    crops: int

    @property
    def loss_db(self) -> float:
        """What conversion costs against the truth (negative: it happened to gain)."""
        return self.psnr_fp32_hr - self.psnr_hr


def _capped(value: float) -> float:
    return min(value, PSNR_CAP)


def compare(crops: Sequence[EvalCrop], reference: Sequence[np.ndarray],
            candidate: Sequence[np.ndarray]) -> Accuracy:
    ref_hr, cand_hr, sq_err, count = [], [], 0.0, 0
    max_abs, abs_sum, abs_count = 0.0, 0.0, 0
    for crop, ref, cand in zip(crops, reference, candidate, strict=True):
        diff = np.abs(cand.astype(np.float64) - ref.astype(np.float64))
        max_abs = max(max_abs, float(diff.max()))
        abs_sum += float(diff.sum())
        abs_count += diff.size
        ref_u8, cand_u8 = crop.output_core(ref), crop.output_core(cand)
        ref_hr.append(_capped(psnr(ref_u8, crop.hr_core)))
        cand_hr.append(_capped(psnr(cand_u8, crop.hr_core)))
        sq_err += float(np.sum((y_channel(ref_u8) - y_channel(cand_u8)) ** 2))
        count += ref_u8.shape[0] * ref_u8.shape[1]
    mse = sq_err / max(count, 1)
    vs_ref = PSNR_CAP if mse == 0 else _capped(10.0 * math.log10(255.0**2 / mse))
    return Accuracy(
        psnr_fp32_hr=float(np.mean(ref_hr)), psnr_hr=float(np.mean(cand_hr)), psnr_vs_fp32=vs_ref,
        max_abs=max_abs, mean_abs=abs_sum / max(abs_count, 1), crops=len(crops))


@dataclass(frozen=True)
class Speed:
    """Time of one model call on a fixed LR input; output megapixels per second at the median."""

    median_ms: float
    min_ms: float
    max_ms: float
    runs: int
    mp_per_s: float


@dataclass(frozen=True)
class SpeedRun:
    models: dict[str, Speed]
    input_shape: tuple[int, int, int, int]
    threads: int
    load_before: float  # 1-minute load average: above the core count, other work shared the CPU
    load_after: float
    cores: int

    @property
    def contended(self) -> bool:
        # This process alone adds up to ~1 to the load; well above that, others were running too.
        return self.load_before > 0.75 * self.cores + 0.5

    def speedup(self, fast: str, base: str = "fp32") -> float:
        return self.models[base].median_ms / self.models[fast].median_ms


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def measure_speed(
    models: Mapping[str, Path | bytes], scale: int, channels: int = 3, size: int = 256, runs: int = 7,
    threads: int = 0, seed: int = 0,
) -> SpeedRun:
    """Median of `runs` timed calls per model on one fixed random LR input.

    Calls are interleaved (A, B, A, B, ...) so that load from other processes, which comes and goes,
    hits every model alike; threads = all cores unless given.
    """
    cores = cpu_count()
    threads = threads or cores
    x = np.random.default_rng(seed).random((1, channels, size, size), dtype=np.float32)
    sessions = {name: backend(m, threads) for name, m in models.items()}
    load_before = os.getloadavg()[0]
    for s in sessions.values():
        s.run(x)  # warm-up: first call allocates and picks kernels
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(x)
            times[name].append((time.perf_counter() - t0) * 1000.0)
    out_mp = (size * scale) ** 2 / 1e6
    result = {
        name: Speed(median_ms=float(np.median(t)), min_ms=float(np.min(t)), max_ms=float(np.max(t)),
                    runs=runs, mp_per_s=out_mp / (float(np.median(t)) / 1000.0))
        for name, t in times.items()
    }
    return SpeedRun(result, (1, channels, size, size), threads, load_before, os.getloadavg()[0], cores)


def cpu_facts() -> dict[str, Any]:
    """What decides INT8 speed on x86: VNNI (u8s8 dot products without int16 saturation) or not."""
    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "avx_vnni": "avx_vnni" in flags,
        "amx_int8": "amx_int8" in flags,
        "onnxruntime": ort.__version__,
    }
