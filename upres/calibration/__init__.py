"""Calibration: INT8 Q/DQ and FP16 models from real photos, with the accuracy and speed they cost.

    calibrate_int8(model, images, out, samples=256, method="minmax", exclude="auto", max_loss_db=0.3)
    calibrate_fp16(model, images, out, samples=64)
    calibrate_command(...)  # `upres calibrate`, see command.py

Modules: images (find, hash, split), model (inspect), reader (tile-like LR crops), int8, fp16,
sensitivity (what stays float), accuracy (PSNR, speed), report (table, JSON, metadata).
"""

from __future__ import annotations

import importlib
from typing import Any

# Resolved on first use: importing the package (as `upres calibrate`'s option parsing does) must
# not import onnx, onnxruntime.quantization and ml_dtypes, which `upres run` never needs.
_EXPORTS = {
    "calibrate_fp16": "upres.calibration.fp16",
    "CalibrationError": "upres.calibration.images",
    "QdqSettings": "upres.calibration.int8",
    "calibrate_int8": "upres.calibration.int8",
    "CalibrationDataReader": "upres.calibration.reader",
    "TileCropReader": "upres.calibration.reader",
    "CalibrationReport": "upres.calibration.report",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'upres.calibration' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
