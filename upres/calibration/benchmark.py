"""Test-set scores for precision benchmarks (benchmarks/make_int8.py, benchmarks/int8_bench.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from upres.core.choices import Mode
from upres.evaluate import evaluate_folder, summary
from upres.runtime.chain_factory import build_chain


def score_test_sets(models: Mapping[str, Path], scale: int, folders: Sequence[Path]) -> dict[str, Any]:
    """Standard protocol (bicubic_down LR, whole image, Y-PSNR/SSIM with shave = scale) per folder and
    model: {"Set5_x4": {"fp32": {"psnr": ..., "ssim": ...}, "int8": {...}, "loss_db": ...}}."""
    result: dict[str, Any] = {}
    for folder in folders:
        entry: dict[str, Any] = {}
        for name, path in models.items():
            setup = build_chain(Mode.FAITHFUL, scale, model=str(path), backend="ort-cpu")
            s = summary(evaluate_folder(folder, scale, setup.chain))
            entry[name] = {"psnr": round(s["psnr"], 3), "ssim": round(s["ssim"], 4), "images": s["images"]}
        names = list(models)
        if len(names) == 2:
            entry["loss_db"] = round(entry[names[0]]["psnr"] - entry[names[1]]["psnr"], 3)
        result[f"{folder.name}_x{scale}"] = entry
    return result
